package dev.fvdisk.web;

import dev.fvdisk.service.CheckResult;
import java.util.List;

/** Body of a check: {@code status} is {@code ok}, {@code leaks} or {@code corrupt}. */
record CheckResponse(
    String status, long leakedChunks, long reclaimedChunks, List<String> problems) {

  static CheckResponse of(CheckResult r) {
    return new CheckResponse(r.status(), r.leakedChunks(), r.reclaimedChunks(), r.problems());
  }
}
