package dev.fvdisk.service;

import java.util.List;

/**
 * The outcome of a consistency check, as {@code qemu-img check} reports it.
 *
 * @param status {@code ok}, {@code leaks} (harmless wasted space) or {@code corrupt}
 * @param leakedChunks leaked chunks found
 * @param reclaimedChunks how many of them a repair turned into free chunks
 */
public record CheckResult(
    String status, long leakedChunks, long reclaimedChunks, List<String> problems) {

  public CheckResult {
    problems = List.copyOf(problems);
  }
}
