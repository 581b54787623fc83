package dev.fvdisk.engine;

import java.util.List;

/**
 * The result of a consistency check, in the spirit of {@code qemu-img check}: leaks are wasted
 * space and harmless, corruption is not.
 *
 * @param leakedChunkIds physical chunks no mapping references, as found (before any repair)
 * @param reclaimedChunks how many leaked chunks a repair turned into free, reusable chunks
 * @param problems one sentence per problem found; empty unless {@code status} is CORRUPT
 */
public record CheckReport(
    Status status, List<Long> leakedChunkIds, int reclaimedChunks, List<String> problems) {

  public enum Status {
    OK,
    LEAKS,
    CORRUPT
  }

  public CheckReport {
    leakedChunkIds = List.copyOf(leakedChunkIds);
    problems = List.copyOf(problems);
  }

  public int leakedChunks() {
    return leakedChunkIds.size();
  }

  static CheckReport of(List<Long> leaked, int reclaimed, List<String> problems) {
    Status status =
        !problems.isEmpty() ? Status.CORRUPT : leaked.isEmpty() ? Status.OK : Status.LEAKS;
    return new CheckReport(status, leaked, reclaimed, problems);
  }
}
