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
import java.util.List;
import java.util.Random;

/**
 * The HTTP-level benchmark: the running service's ranged {@code GET} and {@code PUT} driven by wrk
 * with 1, 8 and 64 connections, against nginx serving the same bytes from a plain file for the
 * reads, and against the engine in process for the 1 MiB writes. Everything runs on loopback on the
 * same machine in one run; nginx is started and stopped by the harness.
 *
 * <p>Every scenario also goes to the service's data port, its second HTTP listener outside Tomcat
 * that answers {@code GET}, {@code HEAD} and {@code PUT} of an image's data: the same process and
 * the same images, so the two ports' figures differ only by the listener. {@code --no-data-port}
 * leaves it off.
 *
 * <p>The report section it writes (appended to {@code --out} when that file exists, so {@code
 * bench/run} produces one report) gives each figure with its spread, p50/p99 latency per request,
 * and the ratios the targets are stated in. Options are listed by {@code --help}.
 */
public final class HttpBench {

  private static final long MIB = 1 << 20;
  static final String SERVICE = "fvdisk HTTP";
  static final String DATA_PORT = "fvdisk-data-port";
  static final String NGINX = "nginx";
  static final String ENGINE = "fvdisk engine";

  private static final double WARM_UP_SECONDS = 8;

  /** Thin, so only what a run writes takes space; no timed run here comes near its end. */
  private static final long FRESH_IMAGE_BYTES = 64L << 30;

  private HttpBench() {}

  /** Command-line options; see {@link #usage()}. */
  static final class Options {
    Path directory = Path.of("target", "bench-work-http");
    Path out;
    long diskBytes = 512 * MIB;
    int repetitions = 3;
    int warmups = 1;
    double seconds = 3;
    int[] connections = {1, 8, 64};
    String only = ".*";

    /** CPU-bound processes ({@code sha256sum /dev/zero}) running beside every measured run. */
    int neighbours;

    /** Start the service with its data port and measure the reads through it too. */
    boolean dataPort = true;

    String command = "./mvnw -B -Pbench test -Dbench.main=dev.fvdisk.bench.HttpBench";
  }

  public static void main(String[] args) throws Exception {
    Options options = parse(args);
    if (!WrkLoad.available()) {
      System.err.println("HttpBench needs wrk (Debian package wrk); bench/run installs it");
      System.exit(2);
    }
    long startNanos = System.nanoTime();
    Instant started = Instant.now();
    if (options.out == null) {
      options.out = Path.of("bench", "results", "http-" + started.getEpochSecond() + ".md");
    }
    // What an interrupted run left behind.
    deleteRecursively(options.directory);
    Files.createDirectories(options.directory);
    MachineFacts facts = MachineFacts.collect(options.directory);
    List<Scenario> scenarios = scenarios(options);
    List<Measurement> measurements = new ArrayList<>();
    String nginxVersion = NginxServer.available() ? NginxServer.version() : "not installed";
    Path www = options.directory.resolve("www");
    Files.createDirectories(www);
    String requestThreads;
    try (FvdiskService service =
            FvdiskService.start(options.directory.resolve("data"), options.dataPort);
        Closeables closeables = new Closeables()) {
      requestThreads = service.requestThreads();
      ServiceContender serviceContender =
          new ServiceContender(service, options, SERVICE, service.port);
      long t0 = System.nanoTime();
      fill(service, serviceContender.filledImage, www.resolve(NginxContender.FILE), options);
      EngineBench.log("filled the service's image and nginx's file in %.1f s", secondsSince(t0));
      List<Contender> contenders = new ArrayList<>();
      contenders.add(serviceContender);
      if (options.dataPort) {
        contenders.add(new ServiceContender(service, options, DATA_PORT, service.dataPort));
      }
      if (NginxServer.available()) {
        NginxServer nginx =
            closeables.add(NginxServer.start(options.directory.resolve("nginx"), www));
        verifySameBytes(service, service.port, serviceContender.filledImage, nginx.port, options);
        if (options.dataPort) {
          verifySameBytes(
              service, service.dataPort, serviceContender.filledImage, nginx.port, options);
        }
        contenders.add(new NginxContender(nginx, options));
      } else {
        EngineBench.log("nginx is not installed: the nginx columns stay empty");
      }
      EngineContender engine =
          new EngineContender(options.directory.resolve("engine"), options.diskBytes);
      Files.createDirectories(options.directory.resolve("engine"));
      contenders.add(new EngineBaseline(engine));
      closeables.add(engine::close);
      for (Contender contender : contenders) {
        contender.prepare();
      }
      t0 = System.nanoTime();
      warmUp(service, serviceContender.filledImage, options);
      EngineBench.log("warmed up the service's JIT in %.1f s", secondsSince(t0));
      for (int n = 0; n < options.neighbours; n++) {
        Process neighbour =
            new ProcessBuilder("sha256sum", "/dev/zero")
                .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .redirectError(ProcessBuilder.Redirect.DISCARD)
                .start();
        closeables.add(() -> neighbour.destroyForcibly().waitFor());
      }
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
        long g0 = System.nanoTime();
        EngineBench.Options measureOptions = new EngineBench.Options();
        measureOptions.repetitions = options.repetitions;
        measureOptions.warmups = options.warmups;
        measurements.addAll(EngineBench.measure(group, contenders, measureOptions));
        EngineBench.log("http %s: %.0f s", first.pattern().id(), secondsSince(g0));
      }
    } finally {
      deleteRecursively(options.directory);
    }
    facts.finish();
    String report =
        HttpReport.render(
            options,
            started,
            secondsSince(startNanos),
            facts,
            requestThreads,
            nginxVersion,
            WrkLoad.version(),
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
   * Every scenario: reads first (on the filled image, against nginx), then writes into the filled
   * image, then 1 MiB writes into a fresh image per repetition, large enough that a timed run never
   * wraps, so every write allocates a chunk.
   */
  static List<Scenario> scenarios(Options options) {
    List<Scenario> all = new ArrayList<>();
    Pattern[] patterns = {
      Pattern.RAND_READ_4K,
      Pattern.SEQ_READ_1M,
      Pattern.RAND_WRITE_4K,
      Pattern.RAND_WRITE_4K_FRESH,
      Pattern.SEQ_WRITE_1M_FRESH
    };
    for (Pattern pattern : patterns) {
      for (boolean durable : pattern.write ? new boolean[] {false, true} : new boolean[] {false}) {
        for (int connections : options.connections) {
          // HTTP runs are timed; the count is what the in-process engine baseline writes: one pass
          // of its disk, as at engine level.
          long count =
              pattern == Pattern.SEQ_WRITE_1M_FRESH ? options.diskBytes / pattern.ioBytes : 0;
          Scenario scenario = new Scenario(pattern, connections, durable, count);
          if (scenario.label().matches(options.only)) {
            all.add(scenario);
          }
        }
      }
    }
    return all;
  }

  /**
   * Writes the same pseudo-random bytes into the service's image (through its API, write-back, then
   * one flush) and into the plain file nginx serves.
   */
  private static void fill(FvdiskService service, String image, Path rawFile, Options options)
      throws IOException, InterruptedException {
    Random random = new Random(42);
    byte[] data = new byte[(int) MIB];
    try (FileChannel raw =
        FileChannel.open(
            rawFile,
            StandardOpenOption.CREATE,
            StandardOpenOption.TRUNCATE_EXISTING,
            StandardOpenOption.WRITE)) {
      for (long at = 0; at < options.diskBytes; at += data.length) {
        random.nextBytes(data);
        service.write(image, at, data, false);
        ByteBuffer buffer = ByteBuffer.wrap(data);
        while (buffer.hasRemaining()) {
          raw.write(buffer, at + buffer.position());
        }
      }
      raw.force(true);
    }
    service.flush(image);
  }

  /**
   * Gives the JIT the service's request paths before the first repetition, so that no scenario is
   * measured while C2 still compiles them: with 1 MiB writes alone, the compiler threads still took
   * a quarter of the process's CPU time after 20 s of load and a fifth after 30 s. nginx needs
   * none. The data port's requests take their own code path from the socket to the engine, so they
   * get their own warm-up.
   */
  private static void warmUp(FvdiskService service, String image, Options options)
      throws IOException, InterruptedException {
    String path = service.dataPath(image);
    List<Integer> ports =
        service.dataPort >= 0 ? List.of(service.port, service.dataPort) : List.of(service.port);
    for (int port : ports) {
      for (Pattern pattern :
          List.of(Pattern.RAND_READ_4K, Pattern.SEQ_READ_1M, Pattern.RAND_WRITE_4K)) {
        boolean write = pattern.write;
        new WrkLoad(
                port,
                path + (write ? "?flush=false" : ""),
                write,
                Offsets.of(pattern, options.diskBytes),
                8,
                WARM_UP_SECONDS)
            .run(options.directory, service::cpuNanos);
      }
      // 1 MiB writes, over the filled image rather than into new chunks: the same request path.
      new WrkLoad(
              port,
              path + "?flush=false",
              true,
              Offsets.of(Pattern.SEQ_READ_1M, options.diskBytes),
              8,
              WARM_UP_SECONDS)
          .run(options.directory, service::cpuNanos);
    }
    service.flush(image);
  }

  /**
   * Before anything is measured: the service on {@code servicePort} (its main port or its data
   * port) and nginx answer ranges with 206 and the same bytes.
   */
  private static void verifySameBytes(
      FvdiskService service, int servicePort, String image, int nginxPort, Options options)
      throws IOException, InterruptedException {
    Path raw = options.directory.resolve("www").resolve(NginxContender.FILE);
    try (RandomAccessFile file = new RandomAccessFile(raw.toFile(), "r")) {
      for (Pattern pattern : List.of(Pattern.RAND_READ_4K, Pattern.SEQ_READ_1M)) {
        Offsets offsets = Offsets.of(pattern, options.diskBytes);
        for (long i = 0; i < 3; i++) {
          long at = offsets.offsetBytes(i * 7 + 1);
          byte[] expected = new byte[pattern.ioBytes];
          file.seek(at);
          file.readFully(expected);
          service.verifySame(
              servicePort, nginxPort, "/" + NginxContender.FILE, image, at, expected);
        }
      }
    }
  }

  private static void deleteRecursively(Path directory) throws IOException {
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

  /** Closes what it was given in reverse order. */
  private static final class Closeables implements AutoCloseable {
    private final List<AutoCloseable> items = new ArrayList<>();

    <T extends AutoCloseable> T add(T item) {
      items.add(item);
      return item;
    }

    @Override
    public void close() throws Exception {
      for (int i = items.size() - 1; i >= 0; i--) {
        items.get(i).close();
      }
    }
  }

  /**
   * The service over HTTP on one of its ports (the main port, or the data port outside Tomcat),
   * driven by wrk. Both ports' contenders read and write the same filled image, which the main
   * port's creates; each makes its own fresh images. They run in the same process, so the process's
   * CPU time is the server CPU of either.
   */
  private static final class ServiceContender implements Contender {
    private final FvdiskService service;
    private final Options options;
    private final String name;
    private final int port;
    final String filledImage = "bench";
    private int freshCounter;

    ServiceContender(FvdiskService service, Options options, String name, int port)
        throws Exception {
      if (port < 0) {
        throw new IllegalArgumentException("the service was started without that port");
      }
      this.service = service;
      this.options = options;
      this.name = name;
      this.port = port;
      if (port == service.port) {
        service.create(filledImage, options.diskBytes);
      }
    }

    @Override
    public String name() {
      return name;
    }

    @Override
    public String imageFor(Scenario scenario) {
      return scenario.pattern() == Pattern.RAND_WRITE_4K_FRESH
          ? "new 64 GiB image per repetition, every write into a new 1 MiB chunk"
          : scenario.pattern().freshImagePerRepetition
              ? "new 64 GiB image per repetition, 1 MiB chunks"
              : "every 1 MiB chunk allocated and written";
    }

    @Override
    public boolean supports(Scenario scenario) {
      return true;
    }

    @Override
    public void prepare() {}

    @Override
    public RunResult runOnce(Scenario scenario) throws Exception {
      String query = scenario.pattern().write && !scenario.durable() ? "?flush=false" : "";
      if (scenario.pattern().freshImagePerRepetition) {
        String image = "fresh-" + port + "-" + freshCounter++;
        long size = FRESH_IMAGE_BYTES;
        service.create(image, size);
        try {
          return new WrkLoad(
                  port,
                  service.dataPath(image) + query,
                  true,
                  Offsets.of(scenario.pattern(), size),
                  scenario.pattern().ioBytes,
                  scenario.callers(),
                  options.seconds)
              .run(options.directory, service::cpuNanos);
        } finally {
          service.delete(image);
        }
      }
      if (scenario.pattern().write) {
        // Earlier repetitions' writes are forced now, so their writeback is not billed to this one.
        service.flush(filledImage);
      }
      return new WrkLoad(
              port,
              service.dataPath(filledImage) + query,
              scenario.pattern().write,
              Offsets.of(scenario.pattern(), options.diskBytes),
              scenario.callers(),
              options.seconds)
          .run(options.directory, service::cpuNanos);
    }

    @Override
    public void close() {}
  }

  /**
   * nginx serving the same bytes from a plain file for the reads. For the 1 MiB write-back writes
   * it receives the same requests and throws the bodies away: not a contender, but the most any
   * server can take through this client and loopback on this machine.
   */
  private static final class NginxContender implements Contender {
    static final String FILE = "disk.raw";
    private final NginxServer nginx;
    private final Options options;

    NginxContender(NginxServer nginx, Options options) {
      this.nginx = nginx;
      this.options = options;
    }

    @Override
    public String name() {
      return NGINX;
    }

    @Override
    public String imageFor(Scenario scenario) {
      return scenario.pattern().write
          ? "reads each body and discards it"
          : "plain file with the same bytes, sendfile on";
    }

    @Override
    public boolean supports(Scenario scenario) {
      return !scenario.pattern().write
          || (scenario.pattern() == Pattern.SEQ_WRITE_1M_FRESH && !scenario.durable());
    }

    @Override
    public void prepare() {}

    @Override
    public RunResult runOnce(Scenario scenario) throws Exception {
      boolean write = scenario.pattern().write;
      return new WrkLoad(
              nginx.port,
              write ? NginxServer.DISCARD_PATH : "/" + FILE,
              write,
              Offsets.of(scenario.pattern(), write ? FRESH_IMAGE_BYTES : options.diskBytes),
              scenario.callers(),
              options.seconds)
          .run(options.directory, nginx::cpuNanos);
    }

    @Override
    public void close() {}
  }

  /**
   * The engine in process for the 1 MiB fresh-image writes, write-back, with as many threads as the
   * HTTP run has connections: the baseline of the "PUT at least 0.7× the engine" target.
   */
  private static final class EngineBaseline implements Contender {
    private final EngineContender engine;

    EngineBaseline(EngineContender engine) {
      this.engine = engine;
    }

    @Override
    public String name() {
      return ENGINE;
    }

    @Override
    public String imageFor(Scenario scenario) {
      return engine.imageFor(scenario);
    }

    @Override
    public boolean supports(Scenario scenario) {
      return scenario.pattern() == Pattern.SEQ_WRITE_1M_FRESH && !scenario.durable();
    }

    @Override
    public void prepare() throws Exception {
      engine.prepare();
    }

    @Override
    public RunResult runOnce(Scenario scenario) throws Exception {
      return engine.runOnce(scenario);
    }

    @Override
    public void close() {}
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
        case "--connections" ->
            o.connections =
                java.util.Arrays.stream(args[++i].split(",")).mapToInt(Integer::parseInt).toArray();
        case "--only" -> o.only = args[++i];
        case "--neighbours" -> o.neighbours = Integer.parseInt(args[++i]);
        case "--no-data-port" -> o.dataPort = false;
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
        "HttpBench [options]",
        "  --dir DIR            scratch directory (default target/bench-work-http)",
        "  --out FILE           report file; appended to when it exists",
        "  --disk-mib N         virtual disk and nginx file size, a power of two (default 512)",
        "  --reps N             measured repetitions per scenario and contender (default 3)",
        "  --warmups N          unmeasured repetitions before them (default 1)",
        "  --seconds S          length of one timed wrk run (default 3)",
        "  --connections LIST   wrk connection counts (default 1,8,64)",
        "  --only REGEX         run only scenarios whose label matches, e.g. 'rand-read-4k.*'",
        "  --neighbours N       run N CPU-bound processes (sha256sum /dev/zero) beside every",
        "                       measured run, for tail latency under load (default 0)",
        "  --no-data-port       start the service without its data port and leave out the",
        "                       reads through it (default: reads through both ports)",
        "  --command TEXT       the command line to print in the report (bench/run passes its own)");
  }
}
