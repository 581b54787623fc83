package dev.fvdisk.service;

import java.util.List;
import org.jspecify.annotations.Nullable;

/**
 * One page of the ranges where a later snapshot, or the live image, may read differently from an
 * earlier snapshot: what a backup that holds the earlier one must copy to hold the later one.
 *
 * @param ranges in order, each a run of whole chunks clipped to the asked span
 * @param nextOffsetBytes where the next page starts; null on the last page
 */
public record ChangedRanges(List<Range> ranges, @Nullable Long nextOffsetBytes) {

  public ChangedRanges {
    ranges = List.copyOf(ranges);
  }

  /** A range of the virtual disk. */
  public record Range(long offsetBytes, long lengthBytes) {}
}
