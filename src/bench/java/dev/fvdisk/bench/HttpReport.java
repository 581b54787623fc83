package dev.fvdisk.bench;

import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Optional;

/** The Markdown section {@link HttpBench} writes: figures, latencies, ratios and the targets. */
final class HttpReport {

  private final List<Scenario> scenarios;
  private final List<Measurement> measurements;
  private final StringBuilder out = new StringBuilder();

  /**
   * Whether the reads went to the service's data port too: its columns and target lines appear only
   * then, so that a run with {@code --no-data-port} reads as before it existed.
   */
  private final boolean dataPort;

  private HttpReport(List<Scenario> scenarios, List<Measurement> measurements) {
    this.scenarios = scenarios;
    this.measurements = measurements;
    this.dataPort = measurements.stream().anyMatch(m -> m.contender.equals(HttpBench.DATA_PORT));
  }

  static String render(
      HttpBench.Options options,
      Instant started,
      double totalSeconds,
      MachineFacts facts,
      String requestThreads,
      String nginxVersion,
      String wrkVersion,
      List<Scenario> scenarios,
      List<Measurement> measurements) {
    HttpReport r = new HttpReport(scenarios, measurements);
    r.header(options, started, totalSeconds, facts, requestThreads, nginxVersion, wrkVersion);
    r.table();
    r.cpu();
    r.targets();
    return r.out.toString();
  }

  private void header(
      HttpBench.Options options,
      Instant started,
      double totalSeconds,
      MachineFacts facts,
      String requestThreads,
      String nginxVersion,
      String wrkVersion) {
    line(
        "# HTTP benchmark, "
            + DateTimeFormatter.ISO_LOCAL_DATE_TIME
                .withZone(ZoneOffset.UTC)
                .format(started.truncatedTo(ChronoUnit.SECONDS))
            + " UTC");
    line("");
    line(
        "Command: `"
            + options.command
            + "`. HTTP part: "
            + Report.fmt("%.0f", totalSeconds)
            + " s. Load average before "
            + facts.loadBefore
            + ", after "
            + facts.loadAfter
            + ". "
            + wrkVersion
            + "; nginx "
            + nginxVersion
            + "; "
            + facts.java
            + ".");
    line("");
    line(
        "The service runs in the harness's JVM with its embedded defaults (Tomcat, "
            + requestThreads
            + ", no tokens, loopback); nginx serves a plain file holding the same bytes. Virtual disk and file"
            + " "
            + (options.diskBytes >> 20)
            + " MiB. wrk keeps its connections open and uses one thread per core at most. Timed"
            + " runs last "
            + options.seconds
            + " s; fresh-image writes go into a new thin 64 GiB image per repetition. The engine"
            + " baseline writes one pass of a fresh image of the disk's size in process, with as"
            + " many threads as connections. "
            + options.warmups
            + " warm-up and "
            + options.repetitions
            + " measured repetitions, interleaved across contenders and connection counts. Figures"
            + " are medians with min–max; a ratio is the median of per-repetition ratios. Latency"
            + " (ms) is wrk's per request, from first byte sent to last byte received; for the"
            + " engine it is per write call.");
    line("");
    if (dataPort) {
      line(
          "Every scenario also goes to the service's data port (the \"data port\" columns and"
              + " target lines): its second HTTP listener, outside Tomcat, in the same process and"
              + " on the same images, so its server CPU is that process's too. \"fvdisk HTTP\" and"
              + " \"fvdisk ÷ nginx\" are the main port's.");
      line("");
    } else if (!options.dataPort) {
      line("The service's data port was off (`--no-data-port`).");
      line("");
    }
    line(
        options.neighbours == 0
            ? "No neighbour: nothing else was started beside the runs."
            : "CPU-bound neighbour: "
                + options.neighbours
                + " × `sha256sum /dev/zero` at the default priority, running through every"
                + " measured repetition (and taking CPU from both sides).");
    line("");
  }

  private void table() {
    // The data port's figures beside the main port's, its ratio beside the main port's ratio.
    line(
        "| pattern | conns | mode | fvdisk HTTP MB/s (min–max) | req/s | p50 ms | p99 ms"
            + (dataPort ? " | data port MB/s (min–max) | req/s | p50 ms | p99 ms" : "")
            + " | nginx MB/s (min–max) | req/s | p50 ms | p99 ms | fvdisk ÷ nginx"
            + (dataPort ? " | data port ÷ nginx" : "")
            + " | engine MB/s | HTTP ÷ engine |");
    line(
        "|---|--:|---|--:|--:|--:|--:|"
            + (dataPort ? "--:|--:|--:|--:|" : "")
            + "--:|--:|--:|--:|--:|"
            + (dataPort ? "--:|" : "")
            + "--:|--:|");
    for (Scenario s : scenarios) {
      Optional<Measurement> service = find(s, HttpBench.SERVICE);
      Optional<Measurement> nginx = find(s, HttpBench.NGINX);
      Optional<Measurement> engine = find(s, HttpBench.ENGINE);
      line(
          "| "
              + s.pattern().label
              + " | "
              + s.callers()
              + " | "
              + s.modeLabel()
              + " | "
              + figures(service)
              + (dataPort ? " | " + figures(find(s, HttpBench.DATA_PORT)) : "")
              + " | "
              + nginx
                  .map(HttpReport::mbpsWithSpread)
                  .map(f -> s.pattern().write ? f + " ¹" : f)
                  .orElse("–")
              + " | "
              + nginx.map(m -> Report.ops(m.medianOpsPerSecond())).orElse("–")
              + " | "
              + nginx.map(m -> millis(m.median().p50LatencyNanos())).orElse("–")
              + " | "
              + nginx.map(m -> millis(m.median().p99LatencyNanos())).orElse("–")
              + " | "
              + ratio(s, HttpBench.SERVICE, HttpBench.NGINX)
              + (dataPort ? " | " + ratio(s, HttpBench.DATA_PORT, HttpBench.NGINX) : "")
              + " | "
              + engine.map(HttpReport::mbpsWithSpread).orElse("–")
              + " | "
              + ratio(s, HttpBench.SERVICE, HttpBench.ENGINE)
              + " |");
    }
    line("");
    line(
        "¹ nginx reading each request body and discarding it: the transport limit, not a"
            + " server that stores anything.");
    line("");
  }

  /**
   * CPU per request of the server and of wrk, from the median repetition: the two share two cores,
   * so these say which side a figure is limited by.
   */
  private void cpu() {
    line(
        "CPU time per request in µs (user and system) of the median repetition: the server"
            + " process, and wrk driving it. For the 1 MiB write-back writes the nginx columns are"
            + " nginx reading each body and throwing it away, the most this client and loopback"
            + " deliver; the engine column is the CPU of its writing threads per 1 MiB write.");
    line("");
    line(
        "| pattern | conns | mode | fvdisk server | wrk → fvdisk"
            + (dataPort ? " | data port server | wrk → data port" : "")
            + " | nginx server | wrk → nginx | engine |");
    line("|---|--:|---|--:|--:|" + (dataPort ? "--:|--:|" : "") + "--:|--:|--:|");
    for (Scenario s : scenarios) {
      Optional<Measurement> service = find(s, HttpBench.SERVICE);
      Optional<Measurement> dataPortRun = find(s, HttpBench.DATA_PORT);
      Optional<Measurement> nginx = find(s, HttpBench.NGINX);
      Optional<Measurement> engine = find(s, HttpBench.ENGINE);
      line(
          "| "
              + s.pattern().label
              + " | "
              + s.callers()
              + " | "
              + s.modeLabel()
              + " | "
              + service.map(m -> perOp(m, m.median().serverCpuNanos())).orElse("–")
              + " | "
              + service.map(m -> perOp(m, m.median().callerCpuNanos())).orElse("–")
              + (dataPort
                  ? " | "
                      + dataPortRun.map(m -> perOp(m, m.median().serverCpuNanos())).orElse("–")
                      + " | "
                      + dataPortRun.map(m -> perOp(m, m.median().callerCpuNanos())).orElse("–")
                  : "")
              + " | "
              + nginx.map(m -> perOp(m, m.median().serverCpuNanos())).orElse("–")
              + " | "
              + nginx.map(m -> perOp(m, m.median().callerCpuNanos())).orElse("–")
              + " | "
              + engine.map(m -> perOp(m, m.median().callerCpuNanos())).orElse("–")
              + " |");
    }
    line("");
  }

  private static String perOp(Measurement m, long cpuNanos) {
    RunResult median = m.median();
    return cpuNanos < 0 || median.ops() == 0 ? "–" : Report.number(cpuNanos / 1e3 / median.ops());
  }

  /**
   * A target stated against nginx, for the main port and, when it was measured, the data port:
   * "{@code what}, {@code measure}" and "{@code what} through the data port, {@code measure}".
   */
  private void nginxVerdicts(Scenario s, String what, String measure, double target) {
    verdict(what + ", " + measure, ratioValue(s, HttpBench.SERVICE, HttpBench.NGINX), target);
    if (dataPort) {
      verdict(
          what + " through the data port, " + measure,
          ratioValue(s, HttpBench.DATA_PORT, HttpBench.NGINX),
          target);
    }
  }

  /** The 99th-percentile target of allocating writes, for one contender when it was measured. */
  private void tailVerdict(Scenario s, String contender, String what) {
    find(s, contender)
        .ifPresent(
            m ->
                line(
                    "- "
                        + what
                        + ", "
                        + s.callers()
                        + " conns, "
                        + s.modeLabel()
                        + ", 99th percentile: "
                        + millis(m.median().p99LatencyNanos())
                        + " ms in the median repetition, the slowest repetition "
                        + millis(worstP99(m))
                        + " ms — "
                        + (worstP99(m) < P99_TARGET_NANOS ? "met" : "**missed**")
                        + " (target under 20 ms in every repetition)"));
  }

  /**
   * The HTTP-performance targets. Each line is printed for the scenarios the run measured; a target
   * whose scenarios were left out (by {@code --only} or {@code --connections}) is absent. The read
   * targets are given for the main port and, when it was measured, for the data port as well.
   */
  private void targets() {
    line("Targets (issue 22), per connection count:");
    line("");
    for (Scenario s : scenarios) {
      switch (s.pattern()) {
        case SEQ_READ_1M ->
            nginxVerdicts(s, "GET 1 MiB", s.callers() + " conns, throughput ÷ nginx", 0.9);
        case RAND_READ_4K ->
            nginxVerdicts(s, "GET 4 KiB", s.callers() + " conns, requests per second ÷ nginx", 0.8);
        case SEQ_WRITE_1M_FRESH -> {
          if (!s.durable()) {
            nginxVerdicts(
                s,
                "PUT 1 MiB write-back",
                s.callers() + " conns, ÷ nginx discarding the bodies",
                0.8);
          }
        }
        case RAND_WRITE_4K_FRESH -> {
          tailVerdict(s, HttpBench.SERVICE, "allocating PUT 4 KiB");
          tailVerdict(s, HttpBench.DATA_PORT, "allocating PUT 4 KiB through the data port");
        }
        case RAND_WRITE_4K -> {
          if (s.durable() && s.callers() == 16) {
            scenarios.stream()
                .filter(one -> one.pattern() == s.pattern() && one.durable() && one.callers() == 1)
                .findFirst()
                .ifPresent(
                    one ->
                        verdict(
                            "durable PUT 4 KiB, 16 conns ÷ 1 conn, requests per second (group"
                                + " commit)",
                            opsRatio(find(s, HttpBench.SERVICE), find(one, HttpBench.SERVICE)),
                            4.0));
          }
        }
        default -> {}
      }
    }
    line("");
  }

  private static final long P99_TARGET_NANOS = 20_000_000;

  private static long worstP99(Measurement m) {
    return m.repetitions.stream().mapToLong(RunResult::p99LatencyNanos).max().orElse(-1);
  }

  private static Optional<Double> opsRatio(Optional<Measurement> a, Optional<Measurement> b) {
    return a.isPresent() && b.isPresent()
        ? Optional.of(a.get().medianOpsPerSecond() / b.get().medianOpsPerSecond())
        : Optional.empty();
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

  private Optional<Measurement> find(Scenario s, String contender) {
    return measurements.stream()
        .filter(m -> m.scenario == s && m.contender.equals(contender))
        .findFirst();
  }

  private Optional<Double> ratioValue(Scenario s, String a, String b) {
    return Report.pairedRatios(find(s, a), find(s, b)).map(Report::median);
  }

  private String ratio(Scenario s, String a, String b) {
    return ratioValue(s, a, b).map(v -> Report.fmt("%.2f", v) + "×").orElse("–");
  }

  /** Throughput with its spread, requests per second, p50 and p99: four cells. */
  private static String figures(Optional<Measurement> m) {
    return m.map(HttpReport::mbpsWithSpread).orElse("–")
        + " | "
        + m.map(x -> Report.ops(x.medianOpsPerSecond())).orElse("–")
        + " | "
        + m.map(x -> millis(x.median().p50LatencyNanos())).orElse("–")
        + " | "
        + m.map(x -> millis(x.median().p99LatencyNanos())).orElse("–");
  }

  private static String mbpsWithSpread(Measurement m) {
    return Report.number(m.medianMegabytesPerSecond()) + " (" + Report.spread(m) + ")";
  }

  private static String millis(long nanos) {
    return nanos < 0 ? "–" : Report.number(nanos / 1e6);
  }

  private void line(String s) {
    out.append(s).append('\n');
  }
}
