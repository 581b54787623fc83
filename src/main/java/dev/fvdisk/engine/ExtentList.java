package dev.fvdisk.engine;

import java.util.ArrayList;
import java.util.List;

/**
 * Collects extents in order, merging a piece into the previous extent when it continues it in the
 * same state, and refusing a piece in a new state once {@code maxExtents} are listed: so the last
 * extent of a list cut short is complete, and the caller continues where it ends.
 */
final class ExtentList {

  private final int maxExtents;
  private final List<Extent> extents = new ArrayList<>();
  private long runStart;
  private long runEnd;
  private Extent.State runState;

  ExtentList(int maxExtents) {
    if (maxExtents < 1) {
      throw new IllegalArgumentException("maxExtents must be at least 1, was " + maxExtents);
    }
    this.maxExtents = maxExtents;
  }

  /**
   * Adds {@code [position, position + length)} in {@code state}, which starts where the previous
   * piece ended.
   *
   * @return false when the piece starts a new extent and the list is full; nothing was added
   */
  boolean add(long position, long length, Extent.State state) {
    if (runState == state && runEnd == position) {
      runEnd += length;
      return true;
    }
    if (runState != null) {
      if (extents.size() + 1 == maxExtents) {
        extents.add(new Extent(runStart, runEnd - runStart, runState));
        runState = null;
        return false;
      }
      extents.add(new Extent(runStart, runEnd - runStart, runState));
    } else if (extents.size() == maxExtents) {
      return false;
    }
    runStart = position;
    runEnd = position + length;
    runState = state;
    return true;
  }

  /** The extents added, the one still open included. */
  List<Extent> toList() {
    if (runState != null) {
      extents.add(new Extent(runStart, runEnd - runStart, runState));
      runState = null;
    }
    return extents;
  }
}
