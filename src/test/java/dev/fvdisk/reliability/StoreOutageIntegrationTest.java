package dev.fvdisk.reliability;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.fvdisk.FvdiskApplication;
import dev.fvdisk.testing.SectorOracle;
import dev.fvdisk.testing.SectorStamp;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfEnvironmentVariable;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.ConfigurableApplicationContext;

/**
 * The bucket's store killed under durable writers: radosgw, then the OSD behind it, each with
 * SIGKILL mid-upload, {@code fvdisk.outage.kills} times (default 10 each), in a single-node Ceph of
 * this test's own ({@code .ci/s3-store.sh}). While a daemon is down, writes fail (503) or wait up
 * to the request timeout; the daemon is started again; the service, never restarted, takes writes
 * again once its latched image reopens. After every kill the whole image is read and judged by the
 * crash oracle: every acknowledged write is there, nothing foreign is.
 *
 * <p>Needs Ceph's daemons and root, as CI has; skipped without them unless {@code
 * FVDISK_REQUIRE_S3} is set. It runs in the suite's pass on the bucket ({@code
 * FVDISK_STORAGE_BACKEND=s3}), once: about four minutes with the default ten kills of each.
 */
@EnabledIfEnvironmentVariable(named = "FVDISK_STORAGE_BACKEND", matches = "(?i)s3")
class StoreOutageIntegrationTest {

  private static final int KILLS = Integer.getInteger("fvdisk.outage.kills", 10);
  private static final int SECTORS = 16384; // an 8 MiB image
  private static final long TAG = SectorStamp.IMAGE_TAG;
  private static final String IMAGE = "/api/v1/images/outage";

  private static Path storeDir;
  private static String endpoint;
  private static ConfigurableApplicationContext service;
  private static int port;
  private static final HttpClient client =
      HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

  @BeforeAll
  static void startStoreAndService() throws Exception {
    boolean haveCeph =
        Files.isExecutable(Path.of("/usr/bin/ceph-mon"))
            && Files.isExecutable(Path.of("/usr/bin/radosgw"));
    if (!haveCeph && System.getenv("FVDISK_REQUIRE_S3") != null) {
      throw new IllegalStateException("FVDISK_REQUIRE_S3 is set but Ceph is not installed");
    }
    assumeTrue(haveCeph, "Ceph's daemons are not installed");
    // Short: Ceph's admin sockets live inside and their paths must stay under 108 bytes.
    storeDir = Files.createTempDirectory("fvo");
    int storePort;
    try (ServerSocket s = new ServerSocket(0)) {
      storePort = s.getLocalPort();
    }
    store("start", String.valueOf(storePort));
    endpoint = "http://127.0.0.1:" + storePort;
    Path dataDir =
        Files.createTempDirectory(Files.createDirectories(Path.of("target", "it-data")), "outage-");
    service =
        new SpringApplicationBuilder(FvdiskApplication.class)
            .run(
                "--server.port=0",
                "--fvdisk.nbd.port=0",
                "--fvdisk.data-dir=" + dataDir,
                "--fvdisk.compaction.enabled=false",
                "--fvdisk.storage.backend=s3",
                "--fvdisk.storage.s3.endpoint=" + endpoint,
                "--fvdisk.storage.s3.bucket=outage",
                "--fvdisk.storage.s3.access-key=FVDISKTESTACCESSKEY01",
                "--fvdisk.storage.s3.secret-key=fvdiskTestSecretKey00000000000000000000001",
                // Short, so that a request to a stalled store gives up in seconds, not half a
                // minute.
                "--fvdisk.storage.s3.request-timeout=6s",
                "--fvdisk.storage.s3.attempt-timeout=2s");
    port = Integer.parseInt(service.getEnvironment().getProperty("local.server.port"));
    HttpResponse<String> created =
        send(
            HttpRequest.newBuilder(uri("/api/v1/images"))
                .header("Content-Type", "application/json")
                .POST(
                    HttpRequest.BodyPublishers.ofString(
                        "{\"name\":\"outage\",\"sizeBytes\":" + SECTORS * 512L + "}"))
                .build());
    assertThat(created.statusCode()).as(created.body()).isEqualTo(201);
  }

  @AfterAll
  static void stopEverything() throws Exception {
    if (service != null) {
      service.close();
    }
    if (storeDir != null) {
      store("stop");
      try (var files = Files.walk(storeDir)) {
        for (Path p : files.sorted(Collections.reverseOrder()).toList()) {
          Files.deleteIfExists(p);
        }
      }
    }
  }

  /** Runs {@code .ci/s3-store.sh <command> <dir> [args]} and waits for it. */
  private static void store(String command, String... args) throws Exception {
    List<String> cmd =
        new ArrayList<>(List.of("bash", ".ci/s3-store.sh", command, storeDir.toString()));
    cmd.addAll(List.of(args));
    Process p =
        new ProcessBuilder(cmd)
            .redirectErrorStream(true)
            .redirectOutput(storeDir.resolveSibling(storeDir.getFileName() + ".log").toFile())
            .start();
    assertThat(p.waitFor(180, TimeUnit.SECONDS)).as("s3-store.sh " + command).isTrue();
    assertThat(p.exitValue()).as("s3-store.sh " + command).isZero();
  }

  private static URI uri(String path) {
    return URI.create("http://127.0.0.1:" + port + path);
  }

  private static HttpResponse<String> send(HttpRequest request) throws Exception {
    return client.send(request, HttpResponse.BodyHandlers.ofString());
  }

  /** One write of the run, as the oracle sees it. */
  private record Write(long id, long firstSector, long endSector, long start, AtomicLong endTick)
      implements SectorOracle.Write {
    @Override
    public long end() {
      return endTick.get();
    }
  }

  private final AtomicLong clock = new AtomicLong();
  private final AtomicLong ids = new AtomicLong(1);
  private long[] before = new long[SECTORS];

  @Test
  void acknowledged_writes_survive_killed_gateways_and_osds_and_the_service_recovers()
      throws Exception {
    Tally figures =
        new Tally("Store outage: SIGKILL of radosgw and of the OSD under durable writes");
    for (int i = 0; i < KILLS; i++) {
      cycle("rgw", figures, i);
    }
    for (int i = 0; i < KILLS; i++) {
      cycle("osd", figures, i);
    }
    System.out.println(figures.markdown());
    assertThat(figures.get("acknowledged-durable sectors lost")).isZero();
    assertThat(figures.get("sectors with foreign content")).isZero();
  }

  /** Writers run; the daemon is killed; started again; writers go on until writes succeed. */
  private void cycle(String daemon, Tally figures, int iteration) throws Exception {
    String where = daemon + " kill " + (iteration + 1);
    List<Write> writes = Collections.synchronizedList(new ArrayList<>());
    List<Write> failedAwaitingSuccess = Collections.synchronizedList(new ArrayList<>());
    java.util.Set<Write> acknowledged = java.util.concurrent.ConcurrentHashMap.newKeySet();
    AtomicBoolean stop = new AtomicBoolean();
    AtomicLong successesAfterRestart = new AtomicLong();
    AtomicBoolean restarted = new AtomicBoolean();
    ExecutorService pool = Executors.newFixedThreadPool(4);
    List<Future<?>> running = new ArrayList<>();
    SplittableRandom seeds = new SplittableRandom(iteration * 31L + daemon.hashCode());
    for (int w = 0; w < 4; w++) {
      SplittableRandom random = seeds.split();
      running.add(
          pool.submit(
              () -> {
                while (!stop.get()) {
                  int count = 1 + random.nextInt(random.nextInt(4) == 0 ? 2048 : 64);
                  long first = random.nextInt(SECTORS - count);
                  long id = ids.getAndIncrement();
                  byte[] body = new byte[count * 512];
                  SectorStamp.fill(body, TAG, id, first);
                  Write write =
                      new Write(
                          id,
                          first,
                          first + count,
                          clock.incrementAndGet(),
                          new AtomicLong(Long.MAX_VALUE));
                  writes.add(write);
                  int status;
                  try {
                    status =
                        send(HttpRequest.newBuilder(uri(IMAGE + "/data"))
                                .timeout(Duration.ofSeconds(60))
                                .header("Content-Type", "application/octet-stream")
                                .header(
                                    "Content-Range",
                                    "bytes "
                                        + first * 512
                                        + "-"
                                        + ((first + count) * 512 - 1)
                                        + "/*")
                                .PUT(HttpRequest.BodyPublishers.ofByteArray(body))
                                .build())
                            .statusCode();
                  } catch (IOException e) {
                    status = -1;
                  }
                  if (status == 204) {
                    write.endTick().set(clock.incrementAndGet());
                    acknowledged.add(write);
                    // A write that failed before this one was answered can land no later than
                    // this: the image that made this one durable was opened after it failed.
                    synchronized (failedAwaitingSuccess) {
                      failedAwaitingSuccess.forEach(f -> f.endTick().set(write.end()));
                      failedAwaitingSuccess.clear();
                    }
                    if (restarted.get()) {
                      successesAfterRestart.incrementAndGet();
                    }
                  } else {
                    // Not acknowledged: it may land until a later write succeeds (end unbounded).
                    failedAwaitingSuccess.add(write);
                    Thread.sleep(200);
                  }
                }
                return null;
              }));
    }
    Thread.sleep(1500);
    long pid = Long.parseLong(Files.readString(storeDir.resolve("run/" + daemon + ".pid")).trim());
    new ProcessBuilder("kill", "-9", String.valueOf(pid)).start().waitFor();
    Thread.sleep(2000);
    store("start");
    restarted.set(true);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
    while (successesAfterRestart.get() < 8) {
      assertThat(System.nanoTime())
          .as(where + ": no write succeeded after the restart")
          .isLessThan(deadline);
      Thread.sleep(200);
    }
    stop.set(true);
    for (Future<?> f : running) {
      f.get(120, TimeUnit.SECONDS);
    }
    pool.shutdown();

    long[] found = readAll(where);
    SectorOracle oracle = SectorOracle.of(before, writes, w -> acknowledged.contains(w));
    long lost = 0;
    long foreign = 0;
    for (int s = 0; s < SECTORS; s++) {
      switch (oracle.judge(s, found[s])) {
        case LOST -> lost++;
        case FOREIGN -> foreign++;
        case ALLOWED -> {}
      }
    }
    assertThat(lost).as(where + ": acknowledged sectors lost").isZero();
    assertThat(foreign).as(where + ": sectors with foreign content").isZero();
    figures.add(daemon + " kills", 1);
    figures.add("writes issued", writes.size());
    figures.add("writes acknowledged (durable)", acknowledged.size());
    figures.add("writes failed or timed out", writes.size() - acknowledged.size());
    figures.add("acknowledged-durable sectors lost", lost);
    figures.add("sectors with foreign content", foreign);
    before = found;
  }

  private long[] readAll(String where) throws Exception {
    HttpResponse<byte[]> read =
        client.send(
            HttpRequest.newBuilder(uri(IMAGE + "/data")).timeout(Duration.ofSeconds(60)).build(),
            HttpResponse.BodyHandlers.ofByteArray());
    assertThat(read.statusCode())
        .as(where + ": " + new String(read.body(), StandardCharsets.UTF_8))
        .isEqualTo(200);
    long[] found = new long[SECTORS];
    for (int s = 0; s < SECTORS; s++) {
      found[s] = SectorStamp.identify(read.body(), s * 512, s, TAG, SectorStamp.BASE_TAG);
    }
    return found;
  }

  /** Counts for the summary line; named for what they count. */
  private static final class Tally {
    private final String title;
    private final Map<String, Long> counts = new java.util.LinkedHashMap<>();

    Tally(String title) {
      this.title = title;
    }

    synchronized void add(String name, long n) {
      counts.merge(name, n, Long::sum);
    }

    synchronized long get(String name) {
      return counts.getOrDefault(name, 0L);
    }

    synchronized String markdown() {
      StringBuilder b = new StringBuilder("## " + title + "\n\n| figure | value |\n|---|---|\n");
      counts.forEach((k, v) -> b.append("| ").append(k).append(" | ").append(v).append(" |\n"));
      return b.toString();
    }
  }
}
