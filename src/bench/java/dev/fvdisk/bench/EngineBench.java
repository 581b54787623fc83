package dev.fvdisk.bench;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;

/**
 * The engine-level benchmark: runs every {@link Scenario} against the fvdisk engine, plain
 * FileChannel I/O and (when installed) {@code qemu-img bench}, all on the same file system in one
 * run, and writes a Markdown report with medians, spreads and ratios.
 *
 * <p>Each contender gets warm-up repetitions, then the measured repetitions of all contenders (and
 * of the 1- and 16-caller variants of a pattern) are interleaved, so a slow phase of a shared
 * machine hurts all of them rather than one. Run it with {@code bench/run} or {@code ./mvnw -B
 * -Pbench test}; options are listed by {@code --help}.
 */
public final class EngineBench {

  private static final long MIB = 1 << 20;

  private EngineBench() {}

  /** Command-line options; see {@link #usage()}. */
  static final class Options {
    Path directory = Path.of("target", "bench-work");
    Path out;
    long diskBytes = 512 * MIB;
    int repetitions = 5;
    int warmups = 1;
    double scale = 1.0;
    boolean qemu = true;
    String only = ".*";
    String contenders = ".*";
    String command = "./mvnw -B -Pbench test";
  }

  public static void main(String[] args) throws Exception {
    Options options = parse(args);
    long startNanos = System.nanoTime();
    Instant started = Instant.now();
    if (options.out == null) {
      String stamp =
          DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss'Z'")
              .withZone(ZoneOffset.UTC)
              .format(started);
      options.out = Path.of("bench", "results", stamp + ".md");
    }
    Files.createDirectories(options.directory);
    clean(options.directory);
    MachineFacts facts = MachineFacts.collect(options.directory);

    List<Contender> contenders = new ArrayList<>();
    contenders.add(new EngineContender(options.directory, options.diskBytes));
    contenders.add(new FileChannelContender(options.directory, options.diskBytes));
    String qemuVersion = "not installed";
    if (options.qemu && QemuContender.available()) {
      qemuVersion = QemuContender.version();
      for (QemuContender.Kind kind : QemuContender.Kind.values()) {
        contenders.add(new QemuContender(kind, options.directory, options.diskBytes));
      }
    } else if (!options.qemu) {
      qemuVersion = "switched off (--no-qemu)";
    }
    contenders.removeIf(c -> !c.name().matches(options.contenders));

    List<Scenario> scenarios = scenarios(options);
    List<Measurement> measurements = new ArrayList<>();
    try {
      for (Contender contender : contenders) {
        long t0 = System.nanoTime();
        contender.prepare();
        log("prepared %s in %.1f s", contender.name(), (System.nanoTime() - t0) / 1e9);
      }
      fillInLockstep(contenders, options.diskBytes);
      for (int i = 0; i < scenarios.size(); ) {
        Scenario first = scenarios.get(i);
        List<Scenario> group = new ArrayList<>();
        for (; i < scenarios.size(); i++) {
          Scenario s = scenarios.get(i);
          if (s.pattern() != first.pattern() || s.durable() != first.durable()) {
            break;
          }
          group.add(s);
        }
        long t0 = System.nanoTime();
        measurements.addAll(measure(group, contenders, options));
        log("%s: %.0f s", first.pattern().id(), (System.nanoTime() - t0) / 1e9);
      }
    } finally {
      for (Contender contender : contenders) {
        try {
          contender.close();
        } catch (IOException e) {
          log("closing %s: %s", contender.name(), e);
        }
      }
      clean(options.directory);
    }
    facts.finish();
    double totalSeconds = (System.nanoTime() - startNanos) / 1e9;
    String report =
        Report.render(options, started, totalSeconds, facts, qemuVersion, scenarios, measurements);
    Path parent = options.out.toAbsolutePath().getParent();
    Files.createDirectories(parent);
    Files.writeString(options.out, report, StandardCharsets.UTF_8);
    System.out.println();
    System.out.println(report);
    log("wrote %s (%.0f s in all)", options.out, totalSeconds);
  }

  /**
   * Measures scenarios that differ only in their number of callers together: warm-ups first, then
   * each repetition runs every scenario of the group on every contender in turn. Interleaving the
   * caller counts too matters for the group-commit ratio (16 callers ÷ 1 caller): fsync latency on
   * a shared virtual disk drifts by an order of magnitude within minutes, and both figures of the
   * ratio must see the same disk.
   */
  static List<Measurement> measure(
      List<Scenario> group, List<Contender> contenders, Options options) throws Exception {
    // measurements[s][c] for scenario s of the group and contender c that supports it.
    List<List<Measurement>> measurements = new ArrayList<>();
    List<List<Contender>> runners = new ArrayList<>();
    for (Scenario scenario : group) {
      List<Measurement> row = new ArrayList<>();
      List<Contender> rowRunners = new ArrayList<>();
      for (Contender contender : contenders) {
        if (!contender.supports(scenario)) {
          continue;
        }
        row.add(new Measurement(scenario, contender.name(), contender.imageFor(scenario)));
        rowRunners.add(contender);
        for (int w = 0; w < options.warmups; w++) {
          contender.runOnce(scenario);
        }
      }
      measurements.add(row);
      runners.add(rowRunners);
    }
    for (int r = 0; r < options.repetitions; r++) {
      // Each repetition rotates the order of scenarios and of contenders, so that no run always
      // follows the same other one (whose deleted files or dirty pages might slow it down).
      for (int k = 0; k < group.size(); k++) {
        int s = (k + r) % group.size();
        List<Measurement> row = measurements.get(s);
        for (int j = 0; j < row.size(); j++) {
          int c = (j + r) % row.size();
          Measurement m = row.get(c);
          settle();
          RunResult result = runners.get(s).get(c).runOnce(m.scenario);
          m.repetitions.add(result);
          log(
              "%-40s %-12s rep %d/%d: %9.1f MB/s %10.0f ops/s",
              m.scenario.label(),
              m.contender,
              r + 1,
              options.repetitions,
              result.megabytesPerSecond(),
              result.opsPerSecond());
        }
      }
    }
    List<Measurement> all = new ArrayList<>();
    measurements.forEach(all::addAll);
    return all;
  }

  /**
   * Fills the contenders that let the harness do it, one MiB each in turn; see {@link
   * Contender#fill}.
   */
  private static void fillInLockstep(List<Contender> contenders, long diskBytes) throws Exception {
    long t0 = System.nanoTime();
    List<Contender> filling = new ArrayList<>(contenders);
    ByteBuffer data = EngineContender.randomDirectBuffer(1 << 20, 42);
    for (long at = 0; at < diskBytes && !filling.isEmpty(); at += data.capacity()) {
      for (java.util.Iterator<Contender> it = filling.iterator(); it.hasNext(); ) {
        if (!it.next().fill(at, data.clear())) {
          it.remove();
        }
      }
    }
    for (Contender contender : filling) {
      contender.finishFill();
    }
    log(
        "filled %d contenders in lockstep in %.1f s",
        filling.size(), (System.nanoTime() - t0) / 1e9);
  }

  /**
   * Writes back every dirty page of the machine before a repetition starts, so a repetition is not
   * throttled by, or billed for, the writeback of what ran before it (earlier repetitions, image
   * preparation, other processes).
   */
  private static void settle() throws IOException, InterruptedException {
    Process sync = new ProcessBuilder("sync").inheritIO().start();
    if (sync.waitFor() != 0) {
      throw new IOException("sync exited with " + sync.exitValue());
    }
  }

  /**
   * Every scenario in the order they run: reads first, while the engine's filled image is as
   * prepared; clone writes last, because they need that image marked read-only as a base.
   *
   * <p>Operation counts keep a whole run near 7 minutes on a 2-core machine with a virtual disk:
   * every contender runs the same count, so the slowest one (qemu-img for 4 KiB requests, qcow2 for
   * copy-on-write) sets the pace at one to two seconds per repetition, and the fastest gets about a
   * tenth of a second. Fsync-bound durable runs get far fewer operations than write-back ones.
   */
  static List<Scenario> scenarios(Options options) {
    List<Scenario> all = new ArrayList<>();
    for (Pattern pattern : Pattern.values()) {
      if (pattern == Pattern.RAND_WRITE_4K_FRESH) {
        continue; // the HTTP level's tail-latency pattern
      }
      for (boolean durable : pattern.write ? new boolean[] {false, true} : new boolean[] {false}) {
        for (int callers : new int[] {1, 16}) {
          long count =
              Math.max(callers, Math.round(baseOpCount(pattern, callers, durable) * options.scale));
          long units = options.diskBytes / Offsets.of(pattern, options.diskBytes).unitBytes;
          if (pattern.freshImagePerRepetition) {
            // Every operation must reach a never-written chunk or block: no wrapping around.
            count = Math.min(count, units);
          }
          Scenario scenario = new Scenario(pattern, callers, durable, count);
          if (scenario.label().matches(options.only)) {
            all.add(scenario);
          }
        }
      }
    }
    return all;
  }

  private static long baseOpCount(Pattern pattern, int callers, boolean durable) {
    boolean one = callers == 1;
    return switch (pattern) {
      case RAND_READ_4K -> 80_000;
      case SEQ_READ_1M -> 1_024;
      case RAND_WRITE_4K, RAND_WRITE_4K_FRESH -> durable ? (one ? 400 : 3_000) : 20_000;
      case SEQ_WRITE_1M_FRESH -> durable ? (one ? 48 : 256) : 512;
      case CLONE_WRITE_4K -> durable ? (one ? 150 : 1_000) : 4_096;
    };
  }

  static void clean(Path directory) throws IOException {
    try (Stream<Path> files = Files.list(directory)) {
      for (Path file : files.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(file);
      }
    }
  }

  static void log(String format, Object... args) {
    System.err.println("[bench] " + String.format(Locale.ROOT, format, args));
  }

  private static Options parse(String[] args) {
    Options o = new Options();
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      switch (a) {
        case "--dir" -> o.directory = Path.of(args[++i]);
        case "--out" -> o.out = Path.of(args[++i]);
        case "--disk-mib" -> o.diskBytes = Long.parseLong(args[++i]) * MIB;
        case "--reps" -> o.repetitions = Integer.parseInt(args[++i]);
        case "--warmups" -> o.warmups = Integer.parseInt(args[++i]);
        case "--scale" -> o.scale = Double.parseDouble(args[++i]);
        case "--no-qemu" -> o.qemu = false;
        case "--only" -> o.only = args[++i];
        case "--contenders" -> o.contenders = args[++i];
        case "--command" -> o.command = args[++i];
        case "--help" -> {
          System.out.println(usage());
          System.exit(0);
        }
        default -> {
          System.err.println("unknown option " + a + "\n" + usage());
          System.exit(2);
        }
      }
    }
    if (o.diskBytes % MIB != 0 || Long.bitCount(o.diskBytes) != 1 || o.repetitions < 1) {
      System.err.println("--disk-mib must be a power of two and --reps at least 1\n" + usage());
      System.exit(2);
    }
    return o;
  }

  static String usage() {
    return String.join(
        "\n",
        "EngineBench [options]",
        "  --dir DIR          scratch directory for images (default target/bench-work)",
        "  --out FILE         report file (default bench/results/<UTC time>.md)",
        "  --disk-mib N       virtual disk and file size, a power of two (default 512)",
        "  --reps N           measured repetitions per scenario and contender (default 5)",
        "  --warmups N        unmeasured repetitions before them (default 1)",
        "  --scale F          multiply every operation count (default 1.0)",
        "  --no-qemu          leave out qemu-img even when it is installed",
        "  --only REGEX       run only scenarios whose label matches, e.g. 'rand-write-4k.*'",
        "  --contenders REGEX run only contenders whose name matches, e.g. 'fvdisk|FileChannel'",
        "  --command TEXT     the command line to print in the report (bench/run passes its own)");
  }
}
