package dev.fvdisk.service;

import java.util.List;
import org.jspecify.annotations.Nullable;

/**
 * One page of an image's extent map.
 *
 * @param nextOffsetBytes where the next page starts; null when this page reaches the end of the
 *     asked span
 */
public record ExtentPage(List<MappedExtent> extents, @Nullable Long nextOffsetBytes) {

  public ExtentPage {
    extents = List.copyOf(extents);
  }

  /** A run of the disk in one state: {@code data}, {@code base} or {@code zero}. */
  public record MappedExtent(long offsetBytes, long lengthBytes, String state) {}
}
