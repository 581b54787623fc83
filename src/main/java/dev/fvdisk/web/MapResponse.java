package dev.fvdisk.web;

import dev.fvdisk.service.DiskExtent;
import dev.fvdisk.service.DiskSpan;
import dev.fvdisk.service.VirtualDisk;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.jspecify.annotations.Nullable;

/** One page of the extent map; {@code nextOffsetBytes} is null on the last page. */
record MapResponse(List<MappedExtent> extents, @Nullable Long nextOffsetBytes) {

  MapResponse {
    extents = List.copyOf(extents);
  }

  /** A run of the disk in one state: {@code data}, {@code base} or {@code zero}. */
  record MappedExtent(long offsetBytes, long lengthBytes, String state) {}

  /**
   * One page of {@code disk}'s extent map over {@code [offsetBytes, offsetBytes + lengthBytes)};
   * both default to the whole disk, and like a byte range, a span that ends past the disk is
   * clipped.
   */
  static MapResponse page(
      VirtualDisk disk, @Nullable Long offsetBytes, @Nullable Long lengthBytes, int maxExtents) {
    long size = disk.sizeBytes();
    DiskSpan span =
        DiskSpan.clipped(offsetBytes, lengthBytes, size, "the virtual disk of " + size + " bytes");
    return of(disk.extents(span.offsetBytes(), span.lengthBytes(), maxExtents), span.endBytes());
  }

  /**
   * The page of {@code extents}, asked for a span that ends at {@code endBytes}; when they stop
   * short of it, the next page starts where they stop.
   */
  static MapResponse of(List<DiskExtent> extents, long endBytes) {
    List<MappedExtent> mapped = new ArrayList<>(extents.size());
    for (DiskExtent e : extents) {
      mapped.add(
          new MappedExtent(
              e.offsetBytes(), e.lengthBytes(), e.state().name().toLowerCase(Locale.ROOT)));
    }
    long reached = extents.get(extents.size() - 1).endBytes();
    return new MapResponse(mapped, reached < endBytes ? reached : null);
  }
}
