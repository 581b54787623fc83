package dev.fvdisk.engine;

/**
 * A run of the virtual disk whose bytes are all stored in chunks of this image ({@code allocated})
 * or all read as zeros without being stored.
 *
 * @param offsetBytes where the run starts on the virtual disk
 * @param lengthBytes how long it is; positive
 * @param allocated whether the run is stored in this image's chunks
 */
public record Extent(long offsetBytes, long lengthBytes, boolean allocated) {

  public Extent {
    if (offsetBytes < 0 || lengthBytes <= 0) {
      throw new IllegalArgumentException(
          "extent needs offset >= 0 and length > 0, was " + offsetBytes + " and " + lengthBytes);
    }
  }

  public long endBytes() {
    return offsetBytes + lengthBytes;
  }
}
