package dev.fvdisk.bench;

import dev.fvdisk.bench.NbdBench.NbdMeasurement;
import dev.fvdisk.bench.NbdBench.NbdPattern;
import dev.fvdisk.bench.NbdBench.NbdScenario;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Optional;

/** The Markdown section {@link NbdBench} writes: figures, latencies, ratios and the targets. */
final class NbdReport {

  private static final double P99_LIMIT_MS = 50;

  private final List<NbdScenario> scenarios;
  private final List<NbdMeasurement> measurements;
  private final StringBuilder out = new StringBuilder();

  private NbdReport(List<NbdScenario> scenarios, List<NbdMeasurement> measurements) {
    this.scenarios = scenarios;
    this.measurements = measurements;
  }

  static String render(
      NbdBench.Options options,
      Instant started,
      double totalSeconds,
      MachineFacts facts,
      String qemuVersion,
      String nbdkitVersion,
      String qemuNbdVersion,
      List<NbdScenario> scenarios,
      List<NbdMeasurement> measurements) {
    NbdReport r = new NbdReport(scenarios, measurements);
    r.header(options, started, totalSeconds, facts, qemuVersion, nbdkitVersion, qemuNbdVersion);
    r.tables();
    r.targets();
    r.details();
    return r.out.toString();
  }

  private void header(
      NbdBench.Options options,
      Instant started,
      double totalSeconds,
      MachineFacts facts,
      String qemuVersion,
      String nbdkitVersion,
      String qemuNbdVersion) {
    line(
        "# NBD benchmark, "
            + DateTimeFormatter.ISO_LOCAL_DATE_TIME
                .withZone(ZoneOffset.UTC)
                .format(started.truncatedTo(ChronoUnit.SECONDS))
            + " UTC");
    line("");
    line(
        "Command: `"
            + options.command
            + "`. NBD part: "
            + Report.fmt("%.0f", totalSeconds)
            + " s. Load average before "
            + facts.loadBefore
            + ", after "
            + facts.loadAfter
            + ". "
            + qemuVersion
            + "; "
            + nbdkitVersion
            + "; "
            + qemuNbdVersion
            + "; "
            + facts.java
            + "; "
            + facts.nproc
            + " cores ("
            + facts.cpu
            + "), "
            + facts.kernel
            + ", file system "
            + facts.fileSystem
            + ".");
    line("");
    line(
        "Contenders, all on loopback: **"
            + NbdBench.FVDISK
            + "**, the service in the harness's JVM with its embedded defaults, a "
            + (options.diskBytes >> 20)
            + " MiB image filled with pseudo-random bytes over NBD; **"
            + NbdBench.NBDKIT
            + "**, `nbdkit -f -i 127.0.0.1 -p PORT file disk.raw` on a raw file with the same"
            + " bytes (the transport limit: it passes each request to pread/pwrite, and never"
            + " allocates); **"
            + NbdBench.QEMU_NBD
            + "**, `qemu-nbd -f qcow2 -x bench -b 127.0.0.1 -p PORT -t -e 32 --cache=writeback`"
            + " on a qcow2 image converted from that raw file (64 KiB clusters). Before anything is"
            + " timed the harness reads the same ranges from all three and compares them with the"
            + " raw file.");
    line("");
    line(
        "Throughput: `qemu-img bench -f raw -t none` (writes: `-w --pattern=90`; FUA rows: `-t"
            + " directsync`, which sets FUA on every write) against `nbd://127.0.0.1:PORT/EXPORT`,"
            + " `-d` the depth, `-o 0 -S step` for the offsets of the engine level (random: a"
            + " stride of about 0.618 of the disk). Each contender's operation count is set from"
            + " its own rate, measured in a short calibration run and "
            + options.warmups
            + " warm-up run(s), so that a run lasts about "
            + options.seconds
            + " s. Allocating writes go 4 KiB at the start of 1 MiB regions never written"
            + " before, into a new thin 256 GiB image per run (fvdisk: a 1 MiB chunk each;"
            + " qcow2: a cluster each, with its own qemu-nbd); nbdkit gets the 4 KiB overwrite"
            + " offsets on its raw file instead. "
            + options.repetitions
            + " measured repetitions, interleaved across contenders and depths, `sync` before each"
            + " run. Figures are medians with min–max; a ratio is the median of per-repetition"
            + " ratios. MB/s is 10^6 bytes per second.");
    line("");
    line(
        "Latency: after each throughput run, "
            + options.seconds
            + " s of the harness's own NBD client (fixed newstyle, `NBD_OPT_GO`, simple replies,"
            + " `TCP_NODELAY`) with as many threads as the depth, each on its own connection with"
            + " one request at a time, the same offsets; per request, from the request's first"
            + " byte sent to the reply's last byte read. p50, p99 and max over all requests of"
            + " the measured runs, in ms. The client runs in the harness's JVM, beside the"
            + " service.");
    line("");
  }

  private void tables() {
    for (NbdPattern pattern : NbdPattern.values()) {
      List<NbdScenario> rows = scenarios.stream().filter(s -> s.pattern() == pattern).toList();
      if (rows.isEmpty()) {
        continue;
      }
      boolean large = pattern.ioBytes >= (1 << 20);
      String unit = large ? "MB/s" : "IOPS";
      line("### " + pattern.label);
      line("");
      line(
          "| depth | mode | fvdisk "
              + unit
              + " (min–max) | nbdkit "
              + unit
              + " (min–max) | qemu-nbd "
              + unit
              + " (min–max) | fvdisk ÷ nbdkit | fvdisk ÷ qemu-nbd | fvdisk p50 / p99 / max ms"
              + " | nbdkit p50 / p99 / max ms | qemu-nbd p50 / p99 / max ms |");
      line("|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|");
      for (NbdScenario s : rows) {
        line(
            "| "
                + String.join(
                    " | ",
                    Integer.toString(s.depth()),
                    s.modeLabel(),
                    figure(s, NbdBench.FVDISK, large),
                    figure(s, NbdBench.NBDKIT, large),
                    figure(s, NbdBench.QEMU_NBD, large),
                    ratio(s, NbdBench.FVDISK, NbdBench.NBDKIT),
                    ratio(s, NbdBench.FVDISK, NbdBench.QEMU_NBD),
                    latencies(s, NbdBench.FVDISK),
                    latencies(s, NbdBench.NBDKIT),
                    latencies(s, NbdBench.QEMU_NBD))
                + " |");
      }
      line("");
    }
  }

  private void targets() {
    line("### Targets");
    line("");
    line(
        "Reads and overwrites at depth 16 at least 0.8× nbdkit (write-back; the FUA rows for"
            + " comparison):");
    line("");
    if (scenarios.stream().noneMatch(s -> s.depth() == 16 && !s.pattern().fresh)) {
      line("- not measured in this run");
    }
    for (NbdScenario s : scenarios) {
      NbdPattern p = s.pattern();
      if (s.depth() == 16 && !p.fresh) {
        String what = s.label() + ", fvdisk ÷ nbdkit";
        if (s.durable()) {
          info(what, ratioValue(s, NbdBench.FVDISK, NbdBench.NBDKIT));
        } else {
          verdict(what, ratioValue(s, NbdBench.FVDISK, NbdBench.NBDKIT), 0.8);
        }
      }
    }
    line("");
    line(
        "Allocating writes into a fresh image at least 0.5× nbdkit's writes (which allocate"
            + " nothing), and at least 2× qemu-nbd on qcow2 at depth 1 (write-back; the other rows"
            + " for comparison):");
    line("");
    if (scenarios.stream().noneMatch(s -> s.pattern().fresh)) {
      line("- not measured in this run");
    }
    for (NbdScenario s : scenarios) {
      if (!s.pattern().fresh) {
        continue;
      }
      String nbdkit = s.label() + ", fvdisk ÷ nbdkit";
      String qemu = s.label() + ", fvdisk ÷ qemu-nbd";
      Optional<Double> toNbdkit = ratioValue(s, NbdBench.FVDISK, NbdBench.NBDKIT);
      Optional<Double> toQemu = ratioValue(s, NbdBench.FVDISK, NbdBench.QEMU_NBD);
      if (s.durable()) {
        info(nbdkit, toNbdkit);
        info(qemu, toQemu);
      } else {
        verdict(nbdkit, toNbdkit, 0.5);
        if (s.depth() == 1) {
          verdict(qemu, toQemu, 2.0);
        } else {
          info(qemu, toQemu);
        }
      }
    }
    line("");
    line("No fvdisk request slower than 50 ms at the 99th percentile, in any pattern:");
    line("");
    for (NbdScenario s : scenarios) {
      Optional<NbdMeasurement> m = find(s, NbdBench.FVDISK);
      String what = s.label() + ", fvdisk p99";
      if (m.isEmpty() || m.get().pooledLatencies().length == 0) {
        line("- " + what + ": not measured");
        continue;
      }
      double p99 = NbdBench.percentile(m.get().pooledLatencies(), 0.99) / 1e6;
      line(
          "- "
              + what
              + ": "
              + Report.number(p99)
              + " ms — "
              + (p99 <= P99_LIMIT_MS ? "met" : "**missed**")
              + " (target ≤ 50 ms)");
    }
    line("");
  }

  private void details() {
    line("### Every run");
    line("");
    line(
        "Operations per `qemu-img bench` run, the server's CPU time (user and system) per"
            + " operation in the median repetition (fvdisk: the harness's JVM, which only waits"
            + " meanwhile; nbdkit and qemu-nbd: their process), and the latency client's own rate"
            + " (median of its runs) with the number of requests behind the latency figures.");
    line("");
    line(
        "| pattern | depth | mode | contender | image | ops/run | MB/s (min–max) | IOPS | server"
            + " CPU µs/op | client req/s | latency samples |");
    line("|---|--:|---|---|---|--:|--:|--:|--:|--:|--:|");
    for (NbdScenario s : scenarios) {
      for (NbdMeasurement m : measurements) {
        if (m.scenario != s) {
          continue;
        }
        RunResult median = m.median();
        line(
            "| "
                + String.join(
                    " | ",
                    s.pattern().label,
                    Integer.toString(s.depth()),
                    s.modeLabel(),
                    m.contender,
                    m.image,
                    Long.toString(m.opCount),
                    Report.number(median.megabytesPerSecond())
                        + " ("
                        + Report.number(m.min().megabytesPerSecond())
                        + "–"
                        + Report.number(m.max().megabytesPerSecond())
                        + ")",
                    Report.ops(median.opsPerSecond()),
                    median.serverCpuNanos() < 0
                        ? "–"
                        : Report.number(median.serverCpuNanos() / 1e3 / median.ops()),
                    Report.ops(m.medianClientRequestsPerSecond()),
                    Report.ops(m.pooledLatencies().length))
                + " |");
      }
    }
    line("");
  }

  private String figure(NbdScenario s, String contender, boolean megabytes) {
    return find(s, contender)
        .map(
            m ->
                megabytes
                    ? Report.number(m.median().megabytesPerSecond())
                        + " ("
                        + Report.number(m.min().megabytesPerSecond())
                        + "–"
                        + Report.number(m.max().megabytesPerSecond())
                        + ")"
                    : Report.ops(m.median().opsPerSecond())
                        + " ("
                        + Report.ops(m.min().opsPerSecond())
                        + "–"
                        + Report.ops(m.max().opsPerSecond())
                        + ")")
        .orElse("–");
  }

  private String latencies(NbdScenario s, String contender) {
    return find(s, contender)
        .map(NbdMeasurement::pooledLatencies)
        .filter(all -> all.length > 0)
        .map(
            all ->
                Report.number(NbdBench.percentile(all, 0.50) / 1e6)
                    + " / "
                    + Report.number(NbdBench.percentile(all, 0.99) / 1e6)
                    + " / "
                    + Report.number(all[all.length - 1] / 1e6))
        .orElse("–");
  }

  private void verdict(String what, Optional<Double> value, double target) {
    line(
        "- "
            + what
            + ": "
            + value
                .map(
                    v ->
                        Report.fmt("%.2f", v)
                            + "× — "
                            + (v >= target ? "met" : "**missed**")
                            + " (target "
                            + Report.fmt("%.1f", target)
                            + "×)")
                .orElse("not measured"));
  }

  private void info(String what, Optional<Double> value) {
    line("- " + what + ": " + value.map(v -> Report.fmt("%.2f", v) + "×").orElse("not measured"));
  }

  private Optional<NbdMeasurement> find(NbdScenario s, String contender) {
    return measurements.stream()
        .filter(m -> m.scenario == s && m.contender.equals(contender))
        .findFirst();
  }

  /**
   * The median of per-repetition ratios: repetition i of each contender ran close together, so each
   * ratio compares two runs that saw the same machine.
   */
  private Optional<Double> ratioValue(NbdScenario s, String a, String b) {
    Optional<NbdMeasurement> x = find(s, a);
    Optional<NbdMeasurement> y = find(s, b);
    if (x.isEmpty() || y.isEmpty()) {
      return Optional.empty();
    }
    int n = Math.min(x.get().repetitions.size(), y.get().repetitions.size());
    if (n == 0) {
      return Optional.empty();
    }
    double[] ratios = new double[n];
    for (int i = 0; i < n; i++) {
      ratios[i] =
          x.get().repetitions.get(i).opsPerSecond() / y.get().repetitions.get(i).opsPerSecond();
    }
    java.util.Arrays.sort(ratios);
    return Optional.of(Report.median(ratios));
  }

  private String ratio(NbdScenario s, String a, String b) {
    return ratioValue(s, a, b).map(v -> Report.fmt("%.2f", v) + "×").orElse("–");
  }

  private void line(String s) {
    out.append(s).append('\n');
  }
}
