package dev.fvdisk.bench;

import dev.fvdisk.objectstore.S3ObjectStore;
import java.io.IOException;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The bucket back end against local files and against the bucket itself, same run: durable 1 MiB
 * writes from 8 writers, durable 4 KiB writes from 16 writers and 1 MiB reads from 8 readers, over
 * HTTP and over NBD, each on a service whose images are local files and on one whose images are in
 * the bucket; reads with a warm cache and, on the bucket, with a cold one (a new service on an
 * empty data directory, every MiB read once). The baselines are raw PUTs and GETs of objects of the
 * same sizes, from as many threads, through the same S3 client the service uses.
 *
 * <p>The service runs in this JVM, as in the HTTP and NBD parts, so the clients and the service
 * share the machine's cores in every column alike. Each figure is the median of the repetitions,
 * with their range.
 *
 * <p>Run: {@code bench/run s3}, which starts a single-node Ceph RGW when no {@code S3_ENDPOINT} is
 * set; or, with {@code S3_ENDPOINT}, {@code S3_REGION}, {@code S3_ACCESS_KEY} and {@code
 * S3_SECRET_KEY} in the environment, {@code ./mvnw -B -q -Pbench test
 * -Dbench.main=dev.fvdisk.bench.BucketBench -Dbench.args="[--seconds 5] [--repetitions 3]"}.
 */
public final class BucketBench {

  private static final int MIB = 1 << 20;
  private static final int SMALL = 4096;
  private static final long IMAGE_SIZE = 4L << 30;
  private static final String BUCKET = "fvdisk-bench";
  private static final int RAW_KEYS = 64;

  private BucketBench() {}

  /** One load: how many clients, how large each request, and whether it writes. */
  private record Load(String name, int clients, int size, boolean write) {
    String unit() {
      return size >= MIB ? "MiB/s" : "requests/s";
    }

    double figure(long requests, double seconds) {
      return size >= MIB ? requests * (double) size / MIB / seconds : requests / seconds;
    }
  }

  private static final Load WRITE_1M = new Load("durable 1 MiB writes", 8, MIB, true);
  private static final Load WRITE_4K = new Load("durable 4 KiB writes", 16, SMALL, true);
  private static final Load READ_1M = new Load("1 MiB reads", 8, MIB, false);

  /** What one client does: one request at the offset given, on its own connection. */
  private interface Client extends AutoCloseable {
    void run(long offsetBytes, Load load) throws Exception;

    @Override
    default void close() throws Exception {}
  }

  private interface Clients {
    Client open(int index) throws Exception;
  }

  private static final class Options {
    Path out;
    String command = "bench/run s3";
    double seconds = 5;
    int repetitions = 3;
    int regionMib = 256;
    Path directory = Path.of("target", "bench-work", "bucket");
  }

  public static void main(String[] args) throws Exception {
    Options options = parse(args);
    String endpoint = System.getenv("S3_ENDPOINT");
    if (endpoint == null || endpoint.isBlank()) {
      System.err.println(
          "BucketBench needs an S3 endpoint in S3_ENDPOINT, S3_REGION, S3_ACCESS_KEY and"
              + " S3_SECRET_KEY; bench/run s3 starts a Ceph RGW and sets them");
      System.exit(2);
    }
    long startNanos = System.nanoTime();
    Instant started = Instant.now();
    if (options.out == null) {
      options.out = Path.of("bench", "results", "bucket-" + started.getEpochSecond() + ".md");
    }
    NbdBench.deleteRecursively(options.directory);
    Files.createDirectories(options.directory);
    MachineFacts facts = MachineFacts.collect(options.directory);
    String run = "run-" + started.getEpochSecond();
    S3ObjectStore.Settings raw =
        new S3ObjectStore.Settings(
            URI.create(endpoint),
            env("S3_REGION", "us-east-1"),
            BUCKET,
            run + "/raw/",
            System.getenv("S3_ACCESS_KEY"),
            System.getenv("S3_SECRET_KEY"),
            Duration.ofSeconds(60),
            Duration.ofSeconds(30));
    String[] bucketBackend = {
      "--fvdisk.storage.backend=s3",
      "--fvdisk.storage.s3.endpoint=" + endpoint,
      "--fvdisk.storage.s3.region=" + raw.region(),
      "--fvdisk.storage.s3.bucket=" + BUCKET,
      "--fvdisk.storage.s3.access-key=" + raw.accessKey(),
      "--fvdisk.storage.s3.secret-key=" + raw.secretKey(),
      "--fvdisk.storage.s3.prefix=" + run + "/service/"
    };
    StringBuilder rows = new StringBuilder();
    try (S3ObjectStore store = S3ObjectStore.open(raw)) {
      byte[] large = filled(MIB, 0);
      for (int k = 0; k < RAW_KEYS; k++) {
        store.put("get-" + k, ByteBuffer.wrap(large));
      }
      Figures rawPut1m = measure(options, WRITE_1M, raw(store), "raw RGW");
      Figures rawPut4k = measure(options, WRITE_4K, raw(store), "raw RGW");
      Figures rawGet1m = measure(options, READ_1M, raw(store), "raw RGW");
      for (String transport : List.of("HTTP", "NBD")) {
        Path local = options.directory.resolve(transport + "-local");
        Path inBucket = options.directory.resolve(transport + "-s3");
        Figures[] onFiles = side(options, transport, local, new String[0]);
        Figures[] bucket = side(options, transport, inBucket, bucketBackend);
        rows.append(
            row(transport, WRITE_1M, "", onFiles[0], bucket[0], rawPut1m)
                + target(bucket[0], rawPut1m, 0.5, "raw"));
        rows.append(
            row(transport, WRITE_4K, "", onFiles[1], bucket[1], rawPut4k)
                + target(bucket[1], rawPut4k, 1, "raw"));
        rows.append(
            row(transport, READ_1M, ", warm cache", onFiles[2], bucket[2], rawGet1m)
                + target(bucket[2], onFiles[2], 0.8, "local"));
        rows.append(row(transport, READ_1M, ", cold cache", null, bucket[3], rawGet1m) + " |\n");
      }
      for (String key : store.list("")) {
        store.delete(key);
      }
      try (S3ObjectStore service =
          S3ObjectStore.open(
              new S3ObjectStore.Settings(
                  raw.endpoint(),
                  raw.region(),
                  BUCKET,
                  run + "/service/",
                  raw.accessKey(),
                  raw.secretKey(),
                  raw.callTimeout(),
                  raw.attemptTimeout()))) {
        for (String key : service.list("")) {
          service.delete(key);
        }
      }
    } finally {
      NbdBench.deleteRecursively(options.directory);
    }
    facts.finish();
    String report = render(options, started, NbdBench.secondsSince(startNanos), facts, rows);
    Report.writeOrAppend(options.out, report);
    System.out.println();
    System.out.println(report);
    EngineBench.log("wrote %s (%.0f s in all)", options.out, NbdBench.secondsSince(startNanos));
    System.exit(0);
  }

  /**
   * One back end over one transport: the two write loads, then warm reads of a region written
   * before them, then (on the bucket) cold reads of it by a service on an empty data directory.
   */
  private static Figures[] side(Options options, String transport, Path dataDir, String[] backend)
      throws Exception {
    boolean bucket = backend.length > 0;
    String image = transport.toLowerCase(Locale.ROOT) + (bucket ? "-s3" : "-local");
    String label = transport + (bucket ? " s3" : " local");
    Figures[] figures = new Figures[4];
    try (FvdiskService service = FvdiskService.start(dataDir.resolve("first"), backend)) {
      service.create(image, IMAGE_SIZE);
      fillRegion(service, image, options.regionMib);
      figures[0] = measure(options, WRITE_1M, clients(service, transport, image), label);
      figures[1] = measure(options, WRITE_4K, clients(service, transport, image), label);
      readAll(options, clients(service, transport, image));
      figures[2] = measure(options, READ_1M, clients(service, transport, image), label + " warm");
      if (!bucket) {
        service.delete(image);
      }
    }
    if (bucket) {
      double[] cold = new double[options.repetitions];
      for (int r = 0; r < options.repetitions; r++) {
        try (FvdiskService service = FvdiskService.start(dataDir.resolve("cold-" + r), backend)) {
          cold[r] = readAll(options, clients(service, transport, image));
          if (r == options.repetitions - 1) {
            service.delete(image);
          }
        }
      }
      figures[3] = new Figures(cold);
      EngineBench.log("%s cold 1 MiB reads: %s MiB/s", label, figures[3]);
    }
    return figures;
  }

  /** Writes the first {@code regionMib} MiB write-back, then flushes them. */
  private static void fillRegion(FvdiskService service, String image, int regionMib)
      throws Exception {
    long t0 = System.nanoTime();
    byte[] data = new byte[MIB];
    new SplittableRandom(7).nextBytes(data);
    inParallel(
        4,
        first -> {
          for (long m = first; m < regionMib; m += 4) {
            service.write(image, m * MIB, data, false);
          }
          return 0;
        });
    service.flush(image);
    EngineBench.log("filled %d MiB of %s in %.1f s", regionMib, image, seconds(t0));
  }

  /**
   * Every MiB of the region read once, by {@link Load#clients} readers taking them in a shuffled
   * order; returns MiB/s.
   */
  private static double readAll(Options options, Clients clients) throws Exception {
    long[] order = new long[options.regionMib];
    for (int i = 0; i < order.length; i++) {
      order[i] = (long) i * MIB;
    }
    SplittableRandom random = new SplittableRandom(11);
    for (int i = order.length - 1; i > 0; i--) {
      int j = random.nextInt(i + 1);
      long t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
    AtomicInteger next = new AtomicInteger();
    long t0 = System.nanoTime();
    inParallel(
        READ_1M.clients(),
        index -> {
          try (Client client = clients.open(index)) {
            for (int i = next.getAndIncrement(); i < order.length; i = next.getAndIncrement()) {
              client.run(order[i], READ_1M);
            }
          }
          return 0;
        });
    return options.regionMib / seconds(t0);
  }

  /**
   * The median and range over the repetitions of one load: each repetition runs the load's clients
   * for {@code --seconds}, after one unmeasured second.
   */
  private static Figures measure(Options options, Load load, Clients clients, String label)
      throws Exception {
    double[] figures = new double[options.repetitions];
    run(load, clients, 1, 0, options.regionMib);
    for (int r = 0; r < options.repetitions; r++) {
      long requests = run(load, clients, options.seconds, r + 1, options.regionMib);
      figures[r] = load.figure(requests, options.seconds);
    }
    Figures result = new Figures(figures);
    EngineBench.log("%s, %s: %s %s", label, load.name(), result, load.unit());
    return result;
  }

  /**
   * Runs the clients for {@code seconds}; returns the requests that completed. Writers each keep to
   * a slice of the image of their own, readers pick 1 MiB pieces of the filled region at random.
   */
  private static long run(Load load, Clients clients, double seconds, int round, int regionMib)
      throws Exception {
    long deadline = System.nanoTime() + (long) (seconds * 1e9);
    long slice = IMAGE_SIZE / 2 / load.clients();
    return inParallel(
        load.clients(),
        index -> {
          SplittableRandom random = new SplittableRandom(31L * round + index);
          long done = 0;
          try (Client client = clients.open(index)) {
            while (System.nanoTime() < deadline) {
              long offset =
                  load.write()
                      ? IMAGE_SIZE / 2 + index * slice + (done * load.size()) % slice
                      : (long) random.nextInt(regionMib) * MIB;
              client.run(offset, load);
              done++;
            }
          }
          return done;
        });
  }

  private interface Worker {
    long work(int index) throws Exception;
  }

  /** Runs {@code count} workers on threads of their own; returns the sum of what they return. */
  private static long inParallel(int count, Worker worker) throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(count);
    try {
      List<Future<Long>> results = new ArrayList<>();
      for (int i = 0; i < count; i++) {
        int index = i;
        results.add(pool.submit(() -> worker.work(index)));
      }
      long sum = 0;
      for (Future<Long> f : results) {
        sum += f.get();
      }
      return sum;
    } finally {
      pool.shutdownNow();
    }
  }

  /** The clients of one transport on one image: a connection of its own each over NBD. */
  private static Clients clients(FvdiskService service, String transport, String image) {
    return index -> {
      byte[] small = filled(SMALL, index);
      byte[] large = filled(MIB, index);
      if (transport.equals("NBD")) {
        NbdClient nbd = NbdClient.connect(service.nbdPort(), image);
        byte[] into = new byte[MIB];
        return new Client() {
          @Override
          public void run(long offsetBytes, Load load) throws IOException {
            if (!load.write()) {
              nbd.read(offsetBytes, into);
            } else {
              nbd.write(offsetBytes, load.size() == MIB ? large : small, true);
            }
          }

          @Override
          public void close() throws IOException {
            nbd.close();
          }
        };
      }
      // Durable: without flush=false a PUT returns once its bytes are durable.
      return (offsetBytes, load) -> {
        if (!load.write()) {
          service.read(image, offsetBytes, MIB);
        } else {
          service.write(image, offsetBytes, load.size() == MIB ? large : small, true);
        }
      };
    };
  }

  /**
   * Raw PUTs and GETs through the S3 client the service uses: each client cycles over {@link
   * #RAW_KEYS} keys of its own, so that the bucket holds no more than a few hundred objects.
   */
  private static Clients raw(S3ObjectStore store) {
    return index -> {
      byte[] small = filled(SMALL, index);
      byte[] large = filled(MIB, index);
      SplittableRandom random = new SplittableRandom(index);
      long[] count = {0};
      return (offsetBytes, load) -> {
        if (!load.write()) {
          if (store.get("get-" + random.nextInt(RAW_KEYS)) == null) {
            throw new IOException("a raw GET found no object");
          }
        } else {
          String key =
              (load.size() == MIB ? "large-" : "small-") + index + "-" + count[0]++ % RAW_KEYS;
          store.put(key, ByteBuffer.wrap(load.size() == MIB ? large : small));
        }
      };
    };
  }

  private static byte[] filled(int size, int seed) {
    byte[] data = new byte[size];
    new SplittableRandom(seed).nextBytes(data);
    return data;
  }

  /** One line of the table; {@code local} is null where the local back end has no figure. */
  private static String row(
      String transport, Load load, String cache, Figures local, Figures bucket, Figures raw) {
    return "| "
        + transport
        + " | "
        + load.name()
        + " ("
        + load.clients()
        + " clients"
        + cache
        + ") | "
        + load.unit()
        + " | "
        + (local == null ? "" : local)
        + " | "
        + bucket
        + " | "
        + (local == null ? "" : ratio(bucket.median(), local.median()))
        + " | "
        + raw
        + " | "
        + ratio(bucket.median(), raw.median())
        + " | ";
  }

  /** The target's cell: the ratio the issue asks for, and whether the medians meet it. */
  private static String target(Figures bucket, Figures basis, double least, String of) {
    boolean met = bucket.median() >= least * basis.median();
    return String.format(Locale.ROOT, "≥ %s× %s: %s |%n", least, of, met ? "met" : "missed");
  }

  private static String ratio(double a, double b) {
    return b <= 0 ? "" : String.format(Locale.ROOT, "%.2f×", a / b);
  }

  private static String render(
      Options options, Instant started, double seconds, MachineFacts facts, StringBuilder rows) {
    return "# Object-store benchmark, "
        + DateTimeFormatter.ISO_LOCAL_DATE_TIME
            .withZone(ZoneOffset.UTC)
            .format(started.truncatedTo(ChronoUnit.SECONDS))
        + " UTC\n\n"
        + "Command: `"
        + options.command
        + "`. Object-store part: "
        + String.format(Locale.ROOT, "%.0f", seconds)
        + " s. Load average before "
        + facts.loadBefore
        + ", after "
        + facts.loadAfter
        + ". "
        + facts.java
        + "; "
        + facts.nproc
        + " CPUs ("
        + facts.cpu
        + "), "
        + facts.kernel
        + ", data directory on "
        + facts.fileSystem
        + ".\n\n"
        + "Each figure is the median of "
        + options.repetitions
        + " repetitions of "
        + String.format(Locale.ROOT, "%.0f", options.seconds)
        + " s (their range in brackets); cold reads read each of "
        + options.regionMib
        + " MiB once, on a new service with an empty data directory, each repetition. Local files"
        + " and the bucket are the same service with fvdisk.storage.backend unset and =s3; the"
        + " service runs in the harness's JVM. Raw RGW: PUTs of objects of the request's size, and"
        + " GETs of 1 MiB objects, from as many threads through the service's S3 client (with its"
        + " CRC32C).\n\n"
        + "| transport | load | unit | local files | bucket | bucket ÷ local | raw RGW"
        + " | bucket ÷ raw | target |\n"
        + "|---|---|---|---|---|---|---|---|---|\n"
        + rows;
  }

  /** The median of some repetitions and their range. */
  private record Figures(double median, double min, double max) {
    Figures(double[] values) {
      this(
          Report.median(sorted(values)),
          Arrays.stream(values).min().orElse(0),
          Arrays.stream(values).max().orElse(0));
    }

    private static double[] sorted(double[] values) {
      double[] sorted = values.clone();
      Arrays.sort(sorted);
      return sorted;
    }

    @Override
    public String toString() {
      return String.format(Locale.ROOT, "%.1f (%.1f–%.1f)", median, min, max);
    }
  }

  private static double seconds(long startNanos) {
    return (System.nanoTime() - startNanos) / 1e9;
  }

  private static String env(String name, String otherwise) {
    String value = System.getenv(name);
    return value == null || value.isBlank() ? otherwise : value;
  }

  private static Options parse(String[] args) {
    Options o = new Options();
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--out" -> o.out = Path.of(args[++i]);
        case "--command" -> o.command = args[++i];
        case "--seconds" -> o.seconds = Double.parseDouble(args[++i]);
        case "--repetitions" -> o.repetitions = Integer.parseInt(args[++i]);
        case "--region-mib" -> o.regionMib = Integer.parseInt(args[++i]);
        default -> throw new IllegalArgumentException("unknown option " + args[i]);
      }
    }
    return o;
  }
}
