package dev.fvdisk.bench;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/** The measured repetitions of one contender on one scenario, and their spread. */
final class Measurement {

  final Scenario scenario;
  final String contender;
  final String image;
  final List<RunResult> repetitions = new ArrayList<>();

  Measurement(Scenario scenario, String contender, String image) {
    this.scenario = scenario;
    this.contender = contender;
    this.image = image;
  }

  private List<RunResult> byThroughput() {
    List<RunResult> sorted = new ArrayList<>(repetitions);
    sorted.sort(Comparator.comparingDouble(RunResult::megabytesPerSecond));
    return sorted;
  }

  /** The median repetition by throughput (the lower middle one for an even count). */
  RunResult median() {
    List<RunResult> sorted = byThroughput();
    return sorted.get((sorted.size() - 1) / 2);
  }

  double medianMegabytesPerSecond() {
    return median().megabytesPerSecond();
  }

  double minMegabytesPerSecond() {
    return byThroughput().get(0).megabytesPerSecond();
  }

  double maxMegabytesPerSecond() {
    List<RunResult> sorted = byThroughput();
    return sorted.get(sorted.size() - 1).megabytesPerSecond();
  }

  double medianOpsPerSecond() {
    return median().opsPerSecond();
  }
}
