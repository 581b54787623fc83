package dev.fvdisk.service;

import org.jspecify.annotations.Nullable;

/**
 * The span a paged listing (a map, the changes) covers: offset and length default to the rest of
 * the disk, and, like a byte range, a span that ends past the disk is clipped.
 */
public record DiskSpan(long offsetBytes, long lengthBytes) {

  /**
   * @param sizeBytes the size of what is listed
   * @param what names that, for the refusal: "the virtual disk of 1024 bytes"
   * @throws RangeOutsideDiskException when the offset is not inside
   * @throws InvalidValueException when the length is not positive
   */
  public static DiskSpan clipped(
      @Nullable Long offsetBytes, @Nullable Long lengthBytes, long sizeBytes, String what) {
    long offset = offsetBytes == null ? 0 : offsetBytes;
    if (offset < 0 || offset >= sizeBytes) {
      throw new RangeOutsideDiskException(
          "offsetBytes " + offset + " is not inside " + what, sizeBytes);
    }
    long length = lengthBytes == null ? sizeBytes - offset : lengthBytes;
    if (length <= 0) {
      throw new InvalidValueException("lengthBytes must be positive, was " + length);
    }
    return new DiskSpan(offset, Math.min(length, sizeBytes - offset));
  }

  public long endBytes() {
    return offsetBytes + lengthBytes;
  }
}
