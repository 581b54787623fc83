package dev.fvdisk.bench;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.Locale;
import java.util.Optional;

/** Renders one run as Markdown: setup, summary table, targets, every figure, qemu-img mapping. */
final class Report {

  static final String ENGINE = "fvdisk";
  static final String LIMIT = "FileChannel";
  static final String QCOW2_SAME_CLUSTER = "qcow2 1M";
  static final String QCOW2_64K = "qcow2 64K";
  static final String QEMU_RAW = "qemu raw";

  private final List<Scenario> scenarios;
  private final List<Measurement> measurements;
  private final StringBuilder out = new StringBuilder();

  private Report(List<Scenario> scenarios, List<Measurement> measurements) {
    this.scenarios = scenarios;
    this.measurements = measurements;
  }

  static String render(
      EngineBench.Options options,
      Instant started,
      double totalSeconds,
      MachineFacts facts,
      String qemuVersion,
      List<Scenario> scenarios,
      List<Measurement> measurements) {
    Report r = new Report(scenarios, measurements);
    r.header(options, started, totalSeconds, facts, qemuVersion);
    r.summary(options);
    r.targets();
    r.details();
    r.qemuMapping(options);
    return r.out.toString();
  }

  private void header(
      EngineBench.Options options,
      Instant started,
      double totalSeconds,
      MachineFacts facts,
      String qemuVersion) {
    line(
        "# Engine benchmark, "
            + DateTimeFormatter.ISO_LOCAL_DATE_TIME
                .withZone(ZoneOffset.UTC)
                .format(started.truncatedTo(java.time.temporal.ChronoUnit.SECONDS))
            + " UTC");
    line("");
    line("Command: `" + options.command + "`. Whole run: " + fmt("%.0f", totalSeconds) + " s.");
    line("");
    line(
        "Virtual disk and file size "
            + (options.diskBytes >> 20)
            + " MiB; "
            + options.warmups
            + " warm-up and "
            + options.repetitions
            + " measured repetitions per scenario and contender, interleaved across contenders and caller counts;"
            + " operation counts scaled by "
            + options.scale
            + ". MB/s is 10^6 bytes per second. Figures are medians of the repetitions, spreads"
            + " are min–max. A ratio is the median of per-repetition ratios, each of two runs made"
            + " back to back, because the disk's speed drifts during a run.");
    line("");
    line("| machine | |");
    line("|---|---|");
    line("| `nproc` | " + facts.nproc + " |");
    line("| CPU | " + facts.cpu + " |");
    line("| kernel | " + facts.kernel + " |");
    line("| file system | " + facts.fileSystem + " |");
    line("| JVM | " + facts.java + " |");
    line("| qemu-img | " + qemuVersion + " |");
    line(
        "| load average (1, 5, 15 min) | before "
            + facts.loadBefore
            + ", after "
            + facts.loadAfter
            + " |");
    line("");
    line("```");
    line("$ free -g");
    line(facts.free);
    line("$ df -h .");
    line(facts.df);
    line("```");
    line("");
  }

  private void summary(EngineBench.Options options) {
    line("## Summary");
    line("");
    line(
        "| pattern | callers | mode | ops/rep | fvdisk MB/s (min–max) | fvdisk ops/s | FileChannel"
            + " MB/s | fvdisk ÷ FileChannel | qemu raw MB/s | qcow2 64K MB/s | qcow2 1M MB/s |"
            + " fvdisk ÷ qcow2 1M | fvdisk ÷ qcow2 64K |");
    line("|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for (Scenario s : scenarios) {
      Optional<Measurement> engine = find(s, ENGINE);
      line(
          "| "
              + String.join(
                  " | ",
                  s.pattern().label,
                  Integer.toString(s.callers()),
                  s.modeLabel(),
                  Long.toString(s.opCount()),
                  engine.map(m -> mbps(m) + " (" + spread(m) + ")").orElse("–"),
                  engine.map(m -> ops(m.medianOpsPerSecond())).orElse("–"),
                  figure(s, LIMIT),
                  ratio(s, ENGINE, LIMIT),
                  figure(s, QEMU_RAW),
                  figure(s, QCOW2_64K),
                  figure(s, QCOW2_SAME_CLUSTER),
                  ratio(s, ENGINE, QCOW2_SAME_CLUSTER),
                  ratio(s, ENGINE, QCOW2_64K))
              + " |");
    }
    line("");
  }

  private void targets() {
    line("## Targets (issue 8, engine level)");
    line("");
    line("Engine ÷ FileChannel at least 0.9 for reads and for writes into allocated chunks:");
    line("");
    for (Scenario s : scenarios) {
      Pattern p = s.pattern();
      if (p == Pattern.RAND_READ_4K || p == Pattern.SEQ_READ_1M || p == Pattern.RAND_WRITE_4K) {
        verdict(s.label(), ratioValue(s, ENGINE, LIMIT), 0.9);
      }
    }
    line("");
    line(
        "Durable 4 KiB writes with 16 callers at least 4× the single-caller durable rate (group"
            + " commit). The other lines are for comparison: what the same concurrency gives the"
            + " other patterns and contenders (the kernel merges concurrent fdatasync calls too):");
    line("");
    for (Pattern p : Pattern.values()) {
      if (!p.write) {
        continue;
      }
      Optional<Scenario> one = scenario(p, 1, true);
      Optional<Scenario> many = scenario(p, 16, true);
      if (one.isEmpty() || many.isEmpty()) {
        continue;
      }
      for (String contender : List.of(ENGINE, LIMIT, QEMU_RAW, QCOW2_64K, QCOW2_SAME_CLUSTER)) {
        Optional<Measurement> a = find(one.get(), contender);
        Optional<Measurement> b = find(many.get(), contender);
        if (a.isEmpty() || b.isEmpty()) {
          continue;
        }
        double[] gains = pairedRatios(b, a).orElseThrow();
        String what =
            p.id()
                + " durable, "
                + contender
                + " x16 ÷ x1 (per-repetition range "
                + fmt("%.1f", gains[0])
                + "–"
                + fmt("%.1f", gains[gains.length - 1])
                + ")";
        if (contender.equals(ENGINE) && p == Pattern.RAND_WRITE_4K) {
          verdict(what, Optional.of(median(gains)), 4.0);
        } else {
          line("- " + what + ": " + fmt("%.2f", median(gains)) + "×");
        }
      }
    }
    line("");
    line("Engine ÷ qcow2 with the same cluster size (1 MiB) at least 1.0 on every pattern:");
    line("");
    for (Scenario s : scenarios) {
      verdict(s.label(), ratioValue(s, ENGINE, QCOW2_SAME_CLUSTER), 1.0);
    }
    line("");
  }

  private void verdict(String what, Optional<Double> value, double target) {
    if (value.isEmpty()) {
      line("- " + what + ": not measured");
      return;
    }
    double v = value.get();
    line(
        "- "
            + what
            + ": "
            + fmt("%.2f", v)
            + "× — "
            + (v >= target ? "met" : "**missed**")
            + " (target "
            + fmt("%.1f", target)
            + "×)");
  }

  private void details() {
    line("## Every figure");
    line("");
    line(
        "Latency is per operation as the caller sees it (write and flush together in durable"
            + " mode). CPU is what the calling threads used per operation, user and system time,"
            + " in the median repetition; kernel work done elsewhere (writeback, journal commits)"
            + " is not in it. qemu-img bench reports neither.");
    line("");
    line(
        "| pattern | callers | mode | contender | image | MB/s | min–max | ops/s | p50 µs | p99 µs |"
            + " CPU µs/op | ÷ FileChannel |");
    line("|---|--:|---|---|---|--:|--:|--:|--:|--:|--:|--:|");
    for (Scenario s : scenarios) {
      for (Measurement m : measurements) {
        if (m.scenario != s) {
          continue;
        }
        RunResult median = m.median();
        line(
            "| "
                + String.join(
                    " | ",
                    s.pattern().label,
                    Integer.toString(s.callers()),
                    s.modeLabel(),
                    m.contender,
                    m.image,
                    mbps(m),
                    spread(m),
                    ops(m.medianOpsPerSecond()),
                    micros(median.p50LatencyNanos()),
                    micros(median.p99LatencyNanos()),
                    median.callerCpuNanos() < 0
                        ? "–"
                        : number(median.callerCpuNanos() / 1e3 / median.ops()),
                    ratio(s, m.contender, LIMIT))
                + " |");
      }
    }
    line("");
  }

  private void qemuMapping(EngineBench.Options options) {
    line("## qemu-img bench arguments per scenario");
    line("");
    line(
        "Every run adds `-f raw|qcow2 -t writeback` and the image file; writes also"
            + " `--pattern=90`. The offsets equal those the in-process contenders use.");
    line("");
    line("| pattern | callers | mode | arguments |");
    line("|---|--:|---|---|");
    for (Scenario s : scenarios) {
      Offsets o = Offsets.of(s.pattern(), options.diskBytes);
      String args =
          "-c "
              + s.opCount()
              + " -d "
              + s.callers()
              + " -s "
              + s.pattern().ioBytes
              + " -o 0 -S "
              + o.qemuStepBytes()
              + (s.pattern().write ? " -w" : "")
              + (s.durable() ? " --flush-interval=" + s.callers() : "");
      line(
          "| "
              + s.pattern().label
              + " | "
              + s.callers()
              + " | "
              + s.modeLabel()
              + " | `"
              + args
              + "` |");
    }
    line("");
  }

  private Optional<Scenario> scenario(Pattern p, int callers, boolean durable) {
    return scenarios.stream()
        .filter(s -> s.pattern() == p && s.callers() == callers && s.durable() == durable)
        .findFirst();
  }

  private Optional<Measurement> find(Scenario s, String contender) {
    return measurements.stream()
        .filter(m -> m.scenario == s && m.contender.equals(contender))
        .findFirst();
  }

  private Optional<Double> ratioValue(Scenario s, String a, String b) {
    return pairedRatios(find(s, a), find(s, b)).map(Report::median);
  }

  /**
   * Ratios of repetition i of {@code a} to repetition i of {@code b}, sorted. Repetitions with the
   * same index ran back to back, so each ratio compares two runs that saw the same machine; the
   * median of these is steadier than a ratio of medians when the disk's speed drifts.
   */
  static Optional<double[]> pairedRatios(Optional<Measurement> a, Optional<Measurement> b) {
    if (a.isEmpty() || b.isEmpty()) {
      return Optional.empty();
    }
    List<RunResult> x = a.get().repetitions;
    List<RunResult> y = b.get().repetitions;
    int n = Math.min(x.size(), y.size());
    double[] ratios = new double[n];
    for (int i = 0; i < n; i++) {
      ratios[i] = x.get(i).megabytesPerSecond() / y.get(i).megabytesPerSecond();
    }
    java.util.Arrays.sort(ratios);
    return Optional.of(ratios);
  }

  /**
   * Writes a part's report to {@code out}, or appends it after a blank line when an earlier part of
   * the same run wrote there first ({@code bench/run} gives every part one file).
   */
  static void writeOrAppend(Path out, String report) throws IOException {
    Files.createDirectories(out.toAbsolutePath().getParent());
    if (Files.exists(out)) {
      Files.writeString(out, "\n" + report, StandardCharsets.UTF_8, StandardOpenOption.APPEND);
    } else {
      Files.writeString(out, report, StandardCharsets.UTF_8);
    }
  }

  static double median(double[] sorted) {
    return sorted[(sorted.length - 1) / 2];
  }

  private String ratio(Scenario s, String a, String b) {
    return ratioValue(s, a, b).map(v -> fmt("%.2f", v) + "×").orElse("–");
  }

  private String figure(Scenario s, String contender) {
    return find(s, contender).map(Report::mbps).orElse("–");
  }

  private static String mbps(Measurement m) {
    return number(m.medianMegabytesPerSecond());
  }

  static String spread(Measurement m) {
    return number(m.minMegabytesPerSecond()) + "–" + number(m.maxMegabytesPerSecond());
  }

  /** Three significant figures are all a shared machine's numbers can carry. */
  static String number(double v) {
    if (v >= 100) {
      return fmt("%.0f", v);
    }
    if (v >= 10) {
      return fmt("%.1f", v);
    }
    return fmt("%.2f", v);
  }

  static String ops(double v) {
    return fmt("%,.0f", v);
  }

  static String micros(long nanos) {
    return nanos < 0 ? "–" : number(nanos / 1e3);
  }

  static String fmt(String format, Object... args) {
    return String.format(Locale.ROOT, format, args);
  }

  private void line(String s) {
    out.append(s).append('\n');
  }
}
