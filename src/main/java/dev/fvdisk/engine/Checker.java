package dev.fvdisk.engine;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.List;
import org.jspecify.annotations.Nullable;

/**
 * The one consistency rule for chunk references, shared by recovery at open, the offline check, the
 * check of an open image and the tests that run either: every mapped chunk lies below a slot limit
 * and is used by one holder only (a table entry, a snapshot's delta or the snapshot directory); the
 * slots below the highest one in use that nothing holds are leaked.
 */
final class Checker {

  private Checker() {}

  /**
   * What a scan of a table found.
   *
   * @param mappedChunks table entries with a slot that passed the checks
   * @param frontier one past the highest slot such an entry uses
   * @param referenced the slots those entries use
   * @param leakedChunks slots below the frontier that no entry references, ascending
   * @param problems one sentence per entry that broke the rule; empty for a sound table
   */
  record Scan(
      long mappedChunks,
      long frontier,
      BitSet referenced,
      List<Long> leakedChunks,
      List<String> problems) {}

  /**
   * Scans the references of table {@code t}.
   *
   * @param slotLimit slots at and past this one cannot hold data (the end of the file, or the
   *     allocator's frontier of an open image)
   * @param limitName how problems name that limit, after "past"
   */
  static Scan scan(ChunkTable t, long slotLimit, String limitName) {
    return scan(t, new SnapshotSet(1), new long[0], slotLimit, limitName);
  }

  /**
   * Scans the references of table {@code t}, of the snapshots' deltas and of the slots {@code
   * directorySlots} of the snapshot directory.
   */
  static Scan scan(
      ChunkTable t,
      SnapshotSet snapshots,
      long[] directorySlots,
      long slotLimit,
      String limitName) {
    List<String> problems = new ArrayList<>();
    BitSet referenced = new BitSet();
    int[] referencedBy = null;
    long mapped = 0;
    long[] frontierOf = {0};
    java.util.function.LongConsumer hold =
        slot -> {
          if (slot >= slotLimit) {
            problems.add("a snapshot keeps physical chunk " + slot + ", past " + limitName);
          } else if (referenced.get((int) slot)) {
            problems.add("physical chunk " + slot + " has two holders, one of them a snapshot");
          } else {
            referenced.set((int) slot);
            frontierOf[0] = Math.max(frontierOf[0], slot + 1);
          }
        };
    snapshots.forEachHeldSlot(hold);
    for (long slot : directorySlots) {
      hold.accept(slot);
    }
    long frontier = frontierOf[0];
    for (int i = 0; i < t.chunkCount(); i++) {
      long physical = t.physicalChunk(i);
      if (physical < 0) {
        continue;
      }
      if (physical >= slotLimit) {
        problems.add(
            "chunk " + i + " is mapped to physical chunk " + physical + ", past " + limitName);
        continue;
      }
      if (referenced.get((int) physical)) {
        if (referencedBy == null) {
          referencedBy = firstReferences(t);
        }
        int first = referencedBy[(int) physical];
        problems.add(
            "physical chunk "
                + physical
                + " is used by "
                + (first == i ? "a snapshot" : "chunk " + first)
                + " and by chunk "
                + i);
        continue;
      }
      referenced.set((int) physical);
      mapped++;
      frontier = Math.max(frontier, physical + 1);
    }
    for (PartialVersions.Version v : snapshots.partials().all()) {
      // A version whose blocks read through a slot nothing holds would read reused space.
      if (v.slot < slotLimit
          && referenced.get((int) v.slot)
          && (v.backing >= slotLimit || !referenced.get((int) v.backing))) {
        problems.add(
            "physical chunk "
                + v.slot
                + " holds a partial version that reads through physical chunk "
                + v.backing
                + ", which nothing holds");
      }
    }
    List<Long> leaked = new ArrayList<>();
    for (int p = referenced.nextClearBit(0); p < frontier; p = referenced.nextClearBit(p + 1)) {
      leaked.add((long) p);
    }
    return new Scan(mapped, frontier, referenced, List.copyOf(leaked), List.copyOf(problems));
  }

  /**
   * Checks an open image's table against its allocator: the scan's rule with the allocator's
   * frontier as the limit, no slot listed as leaked (and so about to be handed out) while in use,
   * and no latched failure.
   */
  static List<String> checkOpen(
      ChunkTable t,
      SnapshotSet snapshots,
      long[] directorySlots,
      ChunkAllocator allocator,
      @Nullable Throwable failure) {
    long frontier = allocator.frontier();
    Scan scan =
        scan(
            t,
            snapshots,
            directorySlots,
            frontier,
            "the allocation frontier (" + frontier + " chunk slots)");
    List<String> problems = new ArrayList<>(scan.problems());
    for (long p : allocator.leakedChunks()) {
      if (scan.referenced().get((int) p)) {
        problems.add("physical chunk " + p + " is listed as leaked but is in use");
      }
    }
    for (long p : allocator.freeChunks()) {
      if (scan.referenced().get((int) p)) {
        problems.add("physical chunk " + p + " is listed as free but is in use");
      }
    }
    if (failure != null) {
      problems.add("image is in a failed state: " + failure);
    }
    return problems;
  }

  /** For error messages only: which virtual chunk first references each physical chunk. */
  private static int[] firstReferences(ChunkTable table) {
    int max = 0;
    for (int i = 0; i < table.chunkCount(); i++) {
      max = (int) Math.max(max, table.physicalChunk(i) + 1);
    }
    int[] first = new int[max];
    Arrays.fill(first, -1);
    for (int i = 0; i < table.chunkCount(); i++) {
      long p = table.physicalChunk(i);
      if (p >= 0 && p < max && first[(int) p] < 0) {
        first[(int) p] = i;
      }
    }
    return first;
  }
}
