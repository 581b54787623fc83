package dev.fvdisk.bench;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.regex.Matcher;

/**
 * The NBD-level benchmark: {@code qemu-img bench} through fvdisk's NBD listener, against {@code
 * nbdkit file} on a raw file holding the same bytes (the transport limit: a server that only passes
 * requests to {@code pread}/{@code pwrite}) and {@code qemu-nbd} on a qcow2 image holding them
 * (what users run today). Everything runs on loopback on the same machine in one run; the two
 * external servers are started and stopped by the harness.
 *
 * <p>Throughput comes from {@code qemu-img bench} (it reports only a total time), with each
 * contender's operation count set from its own rate so that every run lasts about {@code
 * --seconds}. Latency per request comes from {@link NbdClient}: as many threads as the depth, each
 * with its own connection and one request at a time, for {@code --seconds} after each throughput
 * run. The report section is appended to {@code --out} when that file exists, so {@code bench/run}
 * produces one report. Options are listed by {@code --help}.
 */
public final class NbdBench {

  private static final long MIB = 1 << 20;
  static final String FVDISK = "fvdisk NBD";
  static final String NBDKIT = "nbdkit file";
  static final String QEMU_NBD = "qemu-nbd qcow2";

  /**
   * Fresh images for allocating writes: thin, 256 GiB, so a run's writes, one per 1 MiB region,
   * never come back to a region an earlier write of the run touched.
   */
  static final long FRESH_IMAGE_BYTES = 256L << 30;

  /**
   * How far apart allocating writes land: fvdisk's default chunk size, a multiple of qcow2's
   * default 64 KiB cluster, so every such write allocates a chunk and a cluster.
   */
  static final long ALLOCATION_UNIT_BYTES = MIB;

  /** As the engine level: a byte no layer could take for zeros. */
  static final int WRITE_PATTERN_BYTE = 0x5a;

  private static final java.util.regex.Pattern COMPLETED =
      java.util.regex.Pattern.compile("Run completed in ([0-9.]+) seconds");

  private NbdBench() {}

  /** What one NBD workload does. */
  enum NbdPattern {
    RAND_READ_4K("4 KiB random reads", false, 4096, false),
    SEQ_READ_1M("1 MiB sequential reads", false, 1 << 20, false),
    RAND_OVERWRITE_4K("4 KiB random overwrites", true, 4096, false),
    SEQ_OVERWRITE_1M("1 MiB sequential overwrites", true, 1 << 20, false),
    ALLOC_WRITE_4K("4 KiB allocating writes, fresh image", true, 4096, true);

    final String label;
    final boolean write;
    final int ioBytes;
    final boolean fresh;

    NbdPattern(String label, boolean write, int ioBytes, boolean fresh) {
      this.label = label;
      this.write = write;
      this.ioBytes = ioBytes;
      this.fresh = fresh;
    }

    String id() {
      return name().toLowerCase(java.util.Locale.ROOT).replace('_', '-');
    }

    /** The offsets on an image of {@code diskBytes}. */
    Offsets offsets(long diskBytes) {
      if (fresh) {
        // 2 GiB apart at most, for qemu-img's -S: on a fresh 256 GiB image that is still a new
        // 1 MiB region for each of the first 262,144 writes.
        return Offsets.of(Offsets.Kind.STRIDED, ALLOCATION_UNIT_BYTES, diskBytes)
            .withStepAtMost(Integer.MAX_VALUE);
      }
      return Offsets.of(
          ioBytes >= MIB ? Offsets.Kind.SEQUENTIAL : Offsets.Kind.STRIDED, ioBytes, diskBytes);
    }
  }

  /**
   * One row: a pattern at a queue depth, writes write-back or with FUA on every write.
   *
   * @param depth requests in flight: {@code qemu-img bench -d}, and the latency client's threads
   */
  record NbdScenario(NbdPattern pattern, int depth, boolean durable) {
    String modeLabel() {
      return pattern.write ? (durable ? "FUA" : "write-back") : "-";
    }

    String label() {
      return pattern.id()
          + " x"
          + depth
          + (pattern.write ? (durable ? " fua" : " write-back") : "");
    }
  }

  /** Command-line options; see {@link #usage()}. */
  static final class Options {
    Path directory = Path.of("target", "bench-work-nbd");
    Path out;
    long diskBytes = 512 * MIB;
    int repetitions = 3;
    int warmups = 1;
    double seconds = 2.5;
    String only = ".*";
    String contenders = ".*";
    String command = "./mvnw -B -Pbench test -Dbench.main=dev.fvdisk.bench.NbdBench";
  }

  public static void main(String[] args) throws Exception {
    Options options = parse(args);
    if (!QemuContender.available()) {
      System.err.println(
          "NbdBench needs qemu-img (Debian package qemu-utils); bench/run installs it");
      System.exit(2);
    }
    long startNanos = System.nanoTime();
    Instant started = Instant.now();
    if (options.out == null) {
      options.out = Path.of("bench", "results", "nbd-" + started.getEpochSecond() + ".md");
    }
    deleteRecursively(options.directory);
    Files.createDirectories(options.directory);
    MachineFacts facts = MachineFacts.collect(options.directory);
    List<NbdScenario> scenarios = scenarios(options);
    List<NbdMeasurement> measurements = new ArrayList<>();
    String qemuVersion = QemuContender.version();
    String nbdkitVersion =
        NbdServerProcess.nbdkitAvailable() ? NbdServerProcess.nbdkitVersion() : "not installed";
    String qemuNbdVersion =
        NbdServerProcess.qemuNbdAvailable() ? NbdServerProcess.qemuNbdVersion() : "not installed";
    Path raw = options.directory.resolve("disk.raw");
    Path qcow2 = options.directory.resolve("disk.qcow2");
    try (FvdiskService service = FvdiskService.start(options.directory.resolve("data"));
        Closeables closeables = new Closeables()) {
      FvdiskContender fvdisk = new FvdiskContender(service, options);
      long t0 = System.nanoTime();
      fill(fvdisk, raw, options);
      EngineBench.log("filled the service's image and the raw file in %.1f s", secondsSince(t0));
      List<NbdContender> contenders = new ArrayList<>();
      contenders.add(fvdisk);
      if (NbdServerProcess.nbdkitAvailable()) {
        contenders.add(
            closeables.add(
                new SharedServerContender(
                    NBDKIT,
                    NbdServerProcess.nbdkit(raw, options.directory.resolve("logs")),
                    raw,
                    options)));
      } else {
        EngineBench.log("nbdkit is not installed: the nbdkit columns stay empty");
      }
      if (NbdServerProcess.qemuNbdAvailable()) {
        t0 = System.nanoTime();
        NbdServerProcess.run(
            List.of(
                "qemu-img",
                "convert",
                "-f",
                "raw",
                "-O",
                "qcow2",
                raw.toString(),
                qcow2.toString()));
        EngineBench.log("converted the raw file to qcow2 in %.1f s", secondsSince(t0));
        contenders.add(
            closeables.add(
                new SharedServerContender(
                    QEMU_NBD,
                    NbdServerProcess.qemuNbd(qcow2, options.directory.resolve("logs")),
                    qcow2,
                    options)));
      } else {
        EngineBench.log("qemu-nbd is not installed: the qemu-nbd columns stay empty");
      }
      verifySameBytes(contenders, raw, options);
      contenders.removeIf(c -> !c.name().matches(options.contenders));
      settle();
      for (int i = 0; i < scenarios.size(); ) {
        NbdScenario first = scenarios.get(i);
        List<NbdScenario> group = new ArrayList<>();
        for (; i < scenarios.size(); i++) {
          NbdScenario s = scenarios.get(i);
          if (s.pattern() != first.pattern() || s.durable() != first.durable()) {
            break;
          }
          group.add(s);
        }
        long g0 = System.nanoTime();
        measurements.addAll(measure(group, contenders, options));
        EngineBench.log(
            "nbd %s%s: %.0f s",
            first.pattern().id(), first.durable() ? " fua" : "", secondsSince(g0));
      }
    } finally {
      deleteRecursively(options.directory);
    }
    facts.finish();
    String report =
        NbdReport.render(
            options,
            started,
            secondsSince(startNanos),
            facts,
            qemuVersion,
            nbdkitVersion,
            qemuNbdVersion,
            scenarios,
            measurements);
    Report.writeOrAppend(options.out, report);
    System.out.println();
    System.out.println(report);
    EngineBench.log("wrote %s (%.0f s in all)", options.out, secondsSince(startNanos));
    // Spring's non-daemon threads are gone with the context; exit regardless of stray ones.
    System.exit(0);
  }

  /**
   * Every scenario: reads first, while the images hold the filled bytes; then overwrites of the
   * filled images; then allocating writes, each repetition into a fresh image.
   */
  static List<NbdScenario> scenarios(Options options) {
    List<NbdScenario> all = new ArrayList<>();
    NbdPattern[] order = {
      NbdPattern.RAND_READ_4K,
      NbdPattern.SEQ_READ_1M,
      NbdPattern.RAND_OVERWRITE_4K,
      NbdPattern.SEQ_OVERWRITE_1M,
      NbdPattern.ALLOC_WRITE_4K
    };
    for (NbdPattern pattern : order) {
      for (boolean durable : pattern.write ? new boolean[] {false, true} : new boolean[] {false}) {
        int[] depths = pattern.ioBytes >= MIB ? new int[] {16} : new int[] {1, 16};
        for (int depth : depths) {
          NbdScenario scenario = new NbdScenario(pattern, depth, durable);
          if (scenario.label().matches(options.only)) {
            all.add(scenario);
          }
        }
      }
    }
    return all;
  }

  /**
   * Measures scenarios that differ only in depth together, as the engine level does: for each
   * scenario and contender a calibration run and the warm-ups first (they set the operation count
   * of the measured runs), then each repetition runs every scenario on every contender in turn, in
   * an order rotated per repetition. A repetition is a {@code qemu-img bench} run followed by a
   * latency run of the same contender.
   */
  static List<NbdMeasurement> measure(
      List<NbdScenario> group, List<NbdContender> contenders, Options options) throws Exception {
    List<List<NbdMeasurement>> rows = new ArrayList<>();
    List<List<NbdContender>> runners = new ArrayList<>();
    for (NbdScenario scenario : group) {
      List<NbdMeasurement> row = new ArrayList<>();
      List<NbdContender> rowRunners = new ArrayList<>();
      for (NbdContender contender : contenders) {
        NbdMeasurement m =
            new NbdMeasurement(scenario, contender.name(), contender.imageFor(scenario));
        m.opCount = calibrate(contender, scenario, options);
        // The latency client's own warm-up, short: the server's paths are warm by now.
        latencyRun(contender, scenario, Math.min(1.0, options.seconds));
        row.add(m);
        rowRunners.add(contender);
      }
      rows.add(row);
      runners.add(rowRunners);
    }
    for (int r = 0; r < options.repetitions; r++) {
      for (int k = 0; k < group.size(); k++) {
        int s = (k + r) % group.size();
        List<NbdMeasurement> row = rows.get(s);
        for (int j = 0; j < row.size(); j++) {
          int c = (j + r) % row.size();
          NbdMeasurement m = row.get(c);
          NbdContender contender = runners.get(s).get(c);
          settle();
          RunResult result = qemuBench(contender, m.scenario, m.opCount);
          m.repetitions.add(result);
          settle();
          LatencyRun latency = latencyRun(contender, m.scenario, options.seconds);
          m.latencyRuns.add(latency);
          EngineBench.log(
              "%-34s %-15s rep %d/%d: %9.1f MB/s %9.0f IOPS; client %8.0f req/s, p50 %.3f p99"
                  + " %.3f ms",
              m.scenario.label(),
              m.contender,
              r + 1,
              options.repetitions,
              result.megabytesPerSecond(),
              result.opsPerSecond(),
              latency.requestsPerSecond(),
              latency.percentileNanos(0.50) / 1e6,
              latency.percentileNanos(0.99) / 1e6);
        }
      }
    }
    List<NbdMeasurement> all = new ArrayList<>();
    rows.forEach(all::addAll);
    return all;
  }

  /**
   * The operation count for a contender's measured runs: a short run to learn its rate, then the
   * warm-up runs at about {@code --seconds} each, the last of which sets the count. qemu-nbd at
   * depth 16 may be a hundred times slower than the others, so one count for all would make its
   * runs last minutes or the others' milliseconds.
   */
  private static long calibrate(NbdContender contender, NbdScenario scenario, Options options)
      throws Exception {
    long limit = contender.maxOps(scenario);
    long count = Math.min(limit, scenario.pattern().ioBytes >= MIB ? 64 : 1_000);
    RunResult probe = qemuBench(contender, scenario, count);
    count = countFor(probe, options.seconds, scenario, limit);
    for (int w = 0; w < options.warmups; w++) {
      settle();
      RunResult warm = qemuBench(contender, scenario, count);
      count = countFor(warm, options.seconds, scenario, limit);
    }
    EngineBench.log("%-34s %-15s %d operations per run", scenario.label(), contender.name(), count);
    return count;
  }

  private static long countFor(RunResult run, double seconds, NbdScenario scenario, long limit) {
    long count = Math.round(run.opsPerSecond() * seconds);
    return Math.max(Math.min(limit, 4L * scenario.depth()), Math.min(limit, count));
  }

  /** One {@code qemu-img bench} run against the contender, with the server's CPU time. */
  static RunResult qemuBench(NbdContender contender, NbdScenario scenario, long count)
      throws Exception {
    NbdPattern pattern = scenario.pattern();
    try (Endpoint endpoint = contender.endpoint(scenario)) {
      List<String> command = new ArrayList<>(List.of("qemu-img", "bench", "-f", "raw"));
      // "none" sends plain writes and one flush when qemu-img closes the image; "directsync"
      // sets FUA on every write (QEMU's writethrough modes do that when the server offers FUA).
      command.addAll(List.of("-t", scenario.durable() ? "directsync" : "none"));
      command.addAll(List.of("-c", Long.toString(count)));
      command.addAll(List.of("-d", Integer.toString(scenario.depth())));
      command.addAll(List.of("-s", Integer.toString(pattern.ioBytes)));
      command.addAll(List.of("-o", "0", "-S", Long.toString(endpoint.offsets.qemuStepBytes())));
      if (pattern.write) {
        command.add("-w");
        command.add("--pattern=" + WRITE_PATTERN_BYTE);
      }
      command.add(endpoint.uri());
      long cpu0 = endpoint.server.cpuNanos();
      String output = NbdServerProcess.run(command);
      long cpu1 = endpoint.server.cpuNanos();
      Matcher m = COMPLETED.matcher(output);
      if (!m.find()) {
        throw new IOException("no timing in qemu-img bench output: " + output);
      }
      long nanos = Math.max(1, Math.round(Double.parseDouble(m.group(1)) * 1e9));
      // The server's CPU from before qemu-img connects to after it closed the image: its final
      // flush and the handshake are in it, a small share of a 2-3 s run.
      long serverCpu = cpu0 < 0 || cpu1 < 0 ? -1 : cpu1 - cpu0;
      return new RunResult(count, count * pattern.ioBytes, nanos, -1, -1, -1, serverCpu);
    }
  }

  /**
   * Per-request latency: {@code depth} threads, each with its own {@link NbdClient} connection and
   * one request at a time, taking operation indexes from one counter so that together they issue
   * the offsets {@code qemu-img bench} issues, until {@code seconds} have passed (or a fresh image
   * has no unwritten region left). Connections are made before the clock starts; after it stops one
   * connection sends a flush (for writes) and all disconnect, untimed.
   */
  static LatencyRun latencyRun(NbdContender contender, NbdScenario scenario, double seconds)
      throws Exception {
    NbdPattern pattern = scenario.pattern();
    int threads = scenario.depth();
    try (Endpoint endpoint = contender.endpoint(scenario)) {
      List<NbdClient> clients = new ArrayList<>();
      try {
        for (int t = 0; t < threads; t++) {
          clients.add(connectSoon(endpoint));
        }
        Offsets offsets = endpoint.offsets;
        long limit = contender.maxOps(scenario);
        AtomicLong next = new AtomicLong();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        long[][] latencies = new long[threads][];
        int[] counts = new int[threads];
        long[] startedAt = new long[1];
        CyclicBarrier start = new CyclicBarrier(threads, () -> startedAt[0] = System.nanoTime());
        long budget = Math.round(seconds * 1e9);
        List<Thread> workers = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
          int id = t;
          NbdClient client = clients.get(t);
          Thread worker =
              new Thread(
                  () -> {
                    byte[] buffer = new byte[pattern.ioBytes];
                    if (pattern.write) {
                      Arrays.fill(buffer, (byte) WRITE_PATTERN_BYTE);
                    }
                    long[] mine = new long[1 << 14];
                    int n = 0;
                    try {
                      start.await();
                      long deadline = startedAt[0] + budget;
                      while (failure.get() == null) {
                        long i = next.getAndIncrement();
                        long t0 = System.nanoTime();
                        if (i >= limit || t0 >= deadline) {
                          break;
                        }
                        long at = offsets.offsetBytes(i);
                        if (pattern.write) {
                          client.write(at, buffer, scenario.durable());
                        } else {
                          client.read(at, buffer);
                        }
                        long took = System.nanoTime() - t0;
                        if (n == mine.length) {
                          mine = Arrays.copyOf(mine, n * 2);
                        }
                        mine[n++] = took;
                      }
                    } catch (Throwable e) {
                      failure.compareAndSet(null, e);
                    }
                    latencies[id] = mine;
                    counts[id] = n;
                  },
                  "nbd-latency-" + t);
          workers.add(worker);
          worker.start();
        }
        for (Thread worker : workers) {
          worker.join();
        }
        long elapsed = System.nanoTime() - startedAt[0];
        if (failure.get() != null) {
          throw new IOException(
              "latency run " + scenario.label() + " on " + contender.name(), failure.get());
        }
        if (pattern.write) {
          clients.get(0).flush();
        }
        int total = 0;
        for (int c : counts) {
          total += c;
        }
        long[] all = new long[total];
        int at = 0;
        for (int t = 0; t < threads; t++) {
          System.arraycopy(latencies[t], 0, all, at, counts[t]);
          at += counts[t];
        }
        Arrays.sort(all);
        return new LatencyRun(total, (long) total * pattern.ioBytes, elapsed, all);
      } finally {
        for (NbdClient client : clients) {
          client.close();
        }
      }
    }
  }

  /**
   * Connects, retrying for a moment: a server may still count the connections of the run just
   * before until it has seen them close, and refuse connections beyond its limit meanwhile.
   */
  private static NbdClient connectSoon(Endpoint endpoint) throws Exception {
    for (int attempt = 1; ; attempt++) {
      try {
        return NbdClient.connect(endpoint.port, endpoint.export);
      } catch (IOException refused) {
        if (attempt == 50) {
          throw refused;
        }
        Thread.sleep(20);
      }
    }
  }

  /**
   * Writes the same pseudo-random bytes into the service's image (over NBD, 1 MiB writes, then one
   * flush) and into the raw file nbdkit serves and qemu-nbd's qcow2 is converted from.
   */
  private static void fill(FvdiskContender fvdisk, Path rawFile, Options options)
      throws IOException {
    Random random = new Random(42);
    byte[] data = new byte[(int) MIB];
    try (NbdClient client = NbdClient.connect(fvdisk.nbdPort, FvdiskContender.FILLED);
        FileChannel file =
            FileChannel.open(
                rawFile,
                StandardOpenOption.CREATE,
                StandardOpenOption.TRUNCATE_EXISTING,
                StandardOpenOption.WRITE)) {
      for (long at = 0; at < options.diskBytes; at += data.length) {
        random.nextBytes(data);
        client.write(at, data, false);
        ByteBuffer buffer = ByteBuffer.wrap(data);
        while (buffer.hasRemaining()) {
          file.write(buffer, at + buffer.position());
        }
      }
      client.flush();
      file.force(true);
    }
  }

  /** Before anything is measured: every server answers the same bytes as the raw file holds. */
  private static void verifySameBytes(List<NbdContender> contenders, Path raw, Options options)
      throws Exception {
    try (RandomAccessFile file = new RandomAccessFile(raw.toFile(), "r")) {
      for (NbdPattern pattern : List.of(NbdPattern.RAND_READ_4K, NbdPattern.SEQ_READ_1M)) {
        Offsets offsets = pattern.offsets(options.diskBytes);
        for (long i = 0; i < 3; i++) {
          long at = offsets.offsetBytes(i * 7 + 1);
          byte[] expected = new byte[pattern.ioBytes];
          file.seek(at);
          file.readFully(expected);
          for (NbdContender contender : contenders) {
            NbdScenario scenario = new NbdScenario(pattern, 1, false);
            try (Endpoint endpoint = contender.endpoint(scenario);
                NbdClient client = NbdClient.connect(endpoint.port, endpoint.export)) {
              if (client.sizeBytes() != options.diskBytes) {
                throw new IOException(
                    contender.name() + " exports " + client.sizeBytes() + " bytes");
              }
              byte[] got = new byte[expected.length];
              client.read(at, got);
              if (!Arrays.equals(got, expected)) {
                throw new IOException(
                    contender.name() + " does not serve the raw file's bytes at " + at);
              }
            }
          }
        }
      }
    }
    EngineBench.log("every server answers the raw file's bytes");
  }

  /**
   * Writes back every dirty page of the machine before a run starts, so no run pays for what an
   * earlier one left in the page cache.
   */
  private static void settle() throws IOException, InterruptedException {
    Process sync = new ProcessBuilder("sync").inheritIO().start();
    if (sync.waitFor() != 0) {
      throw new IOException("sync exited with " + sync.exitValue());
    }
  }

  static void deleteRecursively(Path directory) throws IOException {
    if (!Files.exists(directory)) {
      return;
    }
    try (java.util.stream.Stream<Path> paths = Files.walk(directory)) {
      for (Path path : paths.sorted(java.util.Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(path);
      }
    }
  }

  static double secondsSince(long startNanos) {
    return (System.nanoTime() - startNanos) / 1e9;
  }

  /** The measured runs of one contender on one scenario. */
  static final class NbdMeasurement {
    final NbdScenario scenario;
    final String contender;
    final String image;
    long opCount;
    final List<RunResult> repetitions = new ArrayList<>();
    final List<LatencyRun> latencyRuns = new ArrayList<>();

    NbdMeasurement(NbdScenario scenario, String contender, String image) {
      this.scenario = scenario;
      this.contender = contender;
      this.image = image;
    }

    private List<RunResult> byThroughput() {
      List<RunResult> sorted = new ArrayList<>(repetitions);
      sorted.sort(java.util.Comparator.comparingDouble(RunResult::opsPerSecond));
      return sorted;
    }

    RunResult median() {
      List<RunResult> sorted = byThroughput();
      return sorted.get((sorted.size() - 1) / 2);
    }

    RunResult min() {
      return byThroughput().get(0);
    }

    RunResult max() {
      List<RunResult> sorted = byThroughput();
      return sorted.get(sorted.size() - 1);
    }

    /** Every measured request of every latency run, sorted. */
    long[] pooledLatencies() {
      int n = 0;
      for (LatencyRun run : latencyRuns) {
        n += run.sortedNanos.length;
      }
      long[] all = new long[n];
      int at = 0;
      for (LatencyRun run : latencyRuns) {
        System.arraycopy(run.sortedNanos, 0, all, at, run.sortedNanos.length);
        at += run.sortedNanos.length;
      }
      Arrays.sort(all);
      return all;
    }

    /** The median of the latency runs' request rates. */
    double medianClientRequestsPerSecond() {
      double[] rates =
          latencyRuns.stream().mapToDouble(LatencyRun::requestsPerSecond).sorted().toArray();
      return rates.length == 0 ? -1 : rates[(rates.length - 1) / 2];
    }
  }

  /** One latency run: requests, elapsed time and every request's latency, sorted. */
  record LatencyRun(long ops, long bytes, long elapsedNanos, long[] sortedNanos) {
    double requestsPerSecond() {
      return ops / (elapsedNanos / 1e9);
    }

    long percentileNanos(double p) {
      return percentile(sortedNanos, p);
    }
  }

  /** The nearest-rank percentile of sorted values, or -1 when there are none. */
  static long percentile(long[] sorted, double p) {
    if (sorted.length == 0) {
      return -1;
    }
    int rank = (int) Math.ceil(p * sorted.length);
    return sorted[Math.max(0, Math.min(sorted.length - 1, rank - 1))];
  }

  /** What a run talks to: a port and export, the offsets to use, and the server's CPU clock. */
  static final class Endpoint implements AutoCloseable {
    final int port;
    final String export;
    final Offsets offsets;
    final CpuClock server;
    private final AutoCloseable release;

    Endpoint(int port, String export, Offsets offsets, CpuClock server, AutoCloseable release) {
      this.port = port;
      this.export = export;
      this.offsets = offsets;
      this.server = server;
      this.release = release;
    }

    String uri() {
      return "nbd://127.0.0.1:" + port + "/" + export;
    }

    @Override
    public void close() throws Exception {
      if (release != null) {
        release.close();
      }
    }
  }

  /** CPU time a server has used so far, or -1. */
  interface CpuClock {
    long cpuNanos();
  }

  /** One column: an NBD server, with a fresh image per run where the pattern wants one. */
  interface NbdContender {
    String name();

    String imageFor(NbdScenario scenario);

    /** What serves one run; for allocating writes a fresh image, released by closing it. */
    Endpoint endpoint(NbdScenario scenario) throws Exception;

    /** At most this many operations in a run: a fresh image's unwritten regions. */
    long maxOps(NbdScenario scenario);
  }

  /**
   * fvdisk's NBD listener in the harness's JVM. During a {@code qemu-img bench} run the harness
   * only waits, so the JVM's CPU time is the service's.
   */
  private static final class FvdiskContender implements NbdContender {
    static final String FILLED = "bench";
    private final FvdiskService service;
    private final Options options;
    final int nbdPort;
    private int freshCounter;

    FvdiskContender(FvdiskService service, Options options) throws Exception {
      this.service = service;
      this.options = options;
      this.nbdPort = service.nbdPort();
      service.create(FILLED, options.diskBytes);
    }

    @Override
    public String name() {
      return FVDISK;
    }

    @Override
    public String imageFor(NbdScenario scenario) {
      return scenario.pattern().fresh
          ? "new thin 256 GiB image per run, 1 MiB chunks"
          : "every 1 MiB chunk allocated and written";
    }

    @Override
    public Endpoint endpoint(NbdScenario scenario) throws Exception {
      if (!scenario.pattern().fresh) {
        return new Endpoint(
            nbdPort,
            FILLED,
            scenario.pattern().offsets(options.diskBytes),
            service::cpuNanos,
            null);
      }
      String image = "fresh-" + freshCounter++;
      service.create(image, FRESH_IMAGE_BYTES);
      return new Endpoint(
          nbdPort,
          image,
          scenario.pattern().offsets(FRESH_IMAGE_BYTES),
          service::cpuNanos,
          () -> deleteImage(image));
    }

    /**
     * Deletes a fresh image; the service answers 409 while an NBD session still holds it, which a
     * client that has just disconnected may for a moment.
     */
    private void deleteImage(String image) throws Exception {
      for (int attempt = 1; ; attempt++) {
        try {
          service.delete(image);
          return;
        } catch (IOException stillAttached) {
          if (attempt == 3) {
            throw stillAttached;
          }
          Thread.sleep(200);
        }
      }
    }

    @Override
    public long maxOps(NbdScenario scenario) {
      return scenario.pattern().fresh ? FRESH_IMAGE_BYTES / ALLOCATION_UNIT_BYTES : Long.MAX_VALUE;
    }
  }

  /**
   * nbdkit on the raw file, or qemu-nbd on the qcow2 image, started once for the run. Allocating
   * writes: nbdkit's raw file has nothing to allocate, so it gets the 4 KiB overwrite offsets on
   * its file (the most any server can do for such writes); qemu-nbd gets a new qcow2 image (64 KiB
   * clusters) per run with its own qemu-nbd process.
   */
  private static final class SharedServerContender implements NbdContender, AutoCloseable {
    private final String name;
    private final NbdServerProcess server;
    private final Path image;
    private final Options options;
    private int freshCounter;

    SharedServerContender(String name, NbdServerProcess server, Path image, Options options) {
      this.name = name;
      this.server = server;
      this.image = image;
      this.options = options;
    }

    private boolean qemu() {
      return name.equals(QEMU_NBD);
    }

    @Override
    public String name() {
      return name;
    }

    @Override
    public String imageFor(NbdScenario scenario) {
      if (!qemu()) {
        return scenario.pattern().fresh
            ? "the raw file, same bytes: nothing to allocate, 4 KiB overwrite offsets"
            : "raw file, same bytes";
      }
      return scenario.pattern().fresh
          ? "new 256 GiB qcow2 per run, 64 KiB clusters, own qemu-nbd"
          : "qcow2 converted from the raw file, 64 KiB clusters";
    }

    @Override
    public Endpoint endpoint(NbdScenario scenario) throws Exception {
      if (!scenario.pattern().fresh) {
        return new Endpoint(
            server.port,
            NbdServerProcess.EXPORT,
            scenario.pattern().offsets(options.diskBytes),
            server::cpuNanos,
            null);
      }
      if (!qemu()) {
        return new Endpoint(
            server.port,
            NbdServerProcess.EXPORT,
            NbdPattern.RAND_OVERWRITE_4K.offsets(options.diskBytes),
            server::cpuNanos,
            null);
      }
      Path fresh = image.resolveSibling("fresh-" + freshCounter++ + ".qcow2");
      NbdServerProcess.run(
          List.of(
              "qemu-img",
              "create",
              "-q",
              "-f",
              "qcow2",
              fresh.toString(),
              Long.toString(FRESH_IMAGE_BYTES)));
      NbdServerProcess own;
      try {
        own = NbdServerProcess.qemuNbd(fresh, options.directory.resolve("logs"));
      } catch (Exception e) {
        Files.deleteIfExists(fresh);
        throw e;
      }
      return new Endpoint(
          own.port,
          NbdServerProcess.EXPORT,
          scenario.pattern().offsets(FRESH_IMAGE_BYTES),
          own::cpuNanos,
          () -> {
            try {
              own.close();
            } finally {
              Files.deleteIfExists(fresh);
            }
          });
    }

    @Override
    public long maxOps(NbdScenario scenario) {
      return scenario.pattern().fresh && qemu()
          ? FRESH_IMAGE_BYTES / ALLOCATION_UNIT_BYTES
          : Long.MAX_VALUE;
    }

    @Override
    public void close() throws InterruptedException {
      server.close();
    }
  }

  /** Closes what it was given in reverse order. */
  private static final class Closeables implements AutoCloseable {
    private final List<AutoCloseable> items = new ArrayList<>();

    <T extends AutoCloseable> T add(T item) {
      items.add(item);
      return item;
    }

    @Override
    public void close() throws Exception {
      Exception first = null;
      for (int i = items.size() - 1; i >= 0; i--) {
        try {
          items.get(i).close();
        } catch (Exception e) {
          if (first == null) {
            first = e;
          }
        }
      }
      if (first != null) {
        throw first;
      }
    }
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
        case "--seconds" -> o.seconds = Double.parseDouble(args[++i]);
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
    if (o.diskBytes % MIB != 0
        || Long.bitCount(o.diskBytes) != 1
        || o.repetitions < 1
        || o.warmups < 0
        || !(o.seconds > 0)) {
      System.err.println(
          "--disk-mib must be a power of two, --reps at least 1, --warmups at least 0 and"
              + " --seconds positive\n"
              + usage());
      System.exit(2);
    }
    return o;
  }

  static String usage() {
    return String.join(
        "\n",
        "NbdBench [options]",
        "  --dir DIR            scratch directory (default target/bench-work-nbd)",
        "  --out FILE           report file; appended to when it exists",
        "  --disk-mib N         image and raw file size, a power of two (default 512)",
        "  --reps N             measured repetitions per scenario and contender (default 3)",
        "  --warmups N          unmeasured qemu-img runs before them, after a short calibration",
        "                       run; the last sets the operation count (default 1)",
        "  --seconds S          length of one qemu-img bench run (through its operation count)",
        "                       and of one latency run (default 2.5)",
        "  --only REGEX         run only scenarios whose label matches, e.g. 'rand-read-4k.*'",
        "                       (labels such as 'rand-read-4k x1', 'seq-overwrite-1m x16 fua',",
        "                       'alloc-write-4k x16 write-back'; through bench/run write . for",
        "                       a space)",
        "  --contenders REGEX   run only contenders whose name matches, e.g. 'fvdisk|nbdkit'",
        "  --command TEXT       the command line to print in the report (bench/run passes its own)");
  }
}
