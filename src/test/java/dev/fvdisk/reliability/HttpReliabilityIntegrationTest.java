package dev.fvdisk.reliability;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The reliability harness: the packaged service runs as a child process ({@link ServiceProcess})
 * and gets what a bad day in production does to it, while concurrent HTTP clients write
 * self-describing sectors ({@link Stamp}) and a model ({@link ImageModel}) keeps what each sector
 * may hold.
 *
 * <ul>
 *   <li><b>Kill test.</b> Clients write to two plain images and to a clone of a read-only base; the
 *       service is killed with SIGKILL at a random moment (every seventh iteration it is killed
 *       again while it restarts and recovers), restarted, every image is checked ({@code ok} or
 *       {@code leaks}, never {@code corrupt}; every fifth time with {@code ?repair=true}), and
 *       every sector of every image is read back and verified; every fourth iteration one plain
 *       image is deleted and created again, so writes keep reaching unallocated chunks.
 *   <li><b>Fault soak.</b> For a bounded time the clients write while the service is, at random
 *       intervals, killed and restarted or paused with SIGSTOP and resumed with SIGCONT; clients
 *       count timeouts and connection errors as unknown outcomes. Then one last kill, and the same
 *       checks and verification.
 *   <li><b>History check.</b> Writers and readers race on overlapping ranges of one image; every
 *       read must show, per sector, the latest completed write or one in flight ({@link History}).
 * </ul>
 *
 * <p>Figures go to {@code target/reliability-report.md} and standard output. CI defaults: 20 kill
 * iterations, a 30-second soak, a 10-second history. The long configuration (see
 * docs/reliability.md): {@code -Dfvdisk.http.kills=200 -Dfvdisk.http.soak.seconds=600}. The seed is
 * printed and can be fixed with {@code -Dfvdisk.http.seed}; it repeats the random choices, not the
 * timing. On failure the data directory and the service log stay under {@code target/reliability/}.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class HttpReliabilityIntegrationTest {

  private static final int CLIENTS = Integer.getInteger("fvdisk.http.clients", 4);
  private static final int KILLS = Integer.getInteger("fvdisk.http.kills", 20);
  private static final int SOAK_SECONDS = Integer.getInteger("fvdisk.http.soak.seconds", 30);
  private static final int HISTORY_SECONDS = Integer.getInteger("fvdisk.http.history.seconds", 10);
  private static final long SEED = Long.getLong("fvdisk.http.seed", new SecureRandom().nextLong());
  private static final int REPAIR_EVERY = 5;
  private static final int STARTUP_KILL_EVERY = 7;
  private static final int RECREATE_EVERY = 4;

  private static final List<Figures> REPORT = new ArrayList<>();

  @Test
  @Order(1)
  void sigkill_under_http_load_loses_no_acknowledged_write_and_never_corrupts() throws Exception {
    Figures f = new Figures("Kill test: SIGKILL under HTTP load, " + KILLS + " iterations");
    register(f);
    Random random = new Random(SEED);
    Path dir = workDir("kill");
    long t0 = System.nanoTime();
    try (ServiceProcess service = new ServiceProcess(dir)) {
      f.note("first start-up (no recovery) took " + service.start() + " ms");
      Workload workload = new Workload(service, f, Duration.ofSeconds(60));
      workload.createImages();
      long lastReady = 5_000;
      for (int i = 0; i < KILLS && f.failures.isEmpty(); i++) {
        f.iterations++;
        long killsBefore = f.kills;
        workload.startClients(CLIENTS, SEED + i);
        Thread.sleep(random.nextInt(100) < 10 ? random.nextInt(200) : 200 + random.nextInt(1800));
        service.kill();
        f.kills++;
        workload.stopClients();
        if (i % STARTUP_KILL_EVERY == STARTUP_KILL_EVERY - 1) {
          // Kill it again while it starts: images may be in the middle of their recovery.
          service.launch();
          Thread.sleep(random.nextLong(Math.max(1, lastReady)));
          service.kill();
          f.kills++;
          f.killsDuringStartup++;
        }
        lastReady = service.start();
        f.restarted(lastReady);
        workload.checkAll(i % REPAIR_EVERY == REPAIR_EVERY - 1);
        workload.verifyAll();
        if (f.failures.isEmpty()) {
          f.killsSurvived += f.kills - killsBefore;
        }
        if (i % 10 == 9) {
          System.out.printf(
              "reliability: %d/%d iterations, %d kills survived, %d writes verified, restart"
                  + " p50 %d ms%n",
              i + 1, KILLS, f.killsSurvived, f.writesVerified, f.percentile(50));
        }
        if (i % RECREATE_EVERY == RECREATE_EVERY - 1) {
          // Fresh, unallocated chunks again; the next kill must not resurrect the old image.
          workload.recreate("plain-b");
          f.imagesRecreated++;
        }
      }
      if (f.failures.isEmpty()) {
        // Reclaim what leaked, and show that a check afterwards finds nothing.
        workload.checkAll(true);
        workload.checkAll(false);
      }
      if (!f.failures.isEmpty()) {
        f.failures.add("the first error the service logged: " + service.firstLoggedError());
      }
    } finally {
      f.runtimeMillis = (System.nanoTime() - t0) / 1_000_000;
      System.out.println(f.markdown());
      writeReport();
    }
    assertClean(f);
    assertEquals(KILLS, f.iterations, "iterations");
    assertTrue(f.kills >= KILLS, "kills");
    assertEquals(f.kills, f.killsSurvived, "kills survived");
    assertTrue(f.writesAckedViaDataPort > 0, "writes through the data port verified");
    ServiceProcess.deleteRecursively(dir);
  }

  @Test
  @Order(2)
  void fault_soak_with_kills_and_pauses_loses_no_acknowledged_write() throws Exception {
    Figures f = new Figures("Fault soak: SIGKILL and SIGSTOP/SIGCONT for " + SOAK_SECONDS + " s");
    register(f);
    Random random = new Random(SEED ^ 0x50AC);
    Path dir = workDir("soak");
    long t0 = System.nanoTime();
    try (ServiceProcess service = new ServiceProcess(dir)) {
      service.start();
      // Short timeouts, so that requests stuck in a paused service end as unknown outcomes.
      Workload workload = new Workload(service, f, Duration.ofSeconds(3));
      workload.createImages();
      workload.startClients(CLIENTS, SEED ^ 0x50AC);
      long deadline = System.nanoTime() + SOAK_SECONDS * 1_000_000_000L;
      while (System.nanoTime() < deadline && f.failures.isEmpty()) {
        Thread.sleep(200 + random.nextInt(2800));
        f.iterations++;
        if (random.nextBoolean()) {
          service.kill();
          f.kills++;
          f.restarted(service.start());
          workload.checkAll(random.nextInt(4) == 0);
          f.killsSurvived++;
        } else {
          service.pause();
          f.pauses++;
          Thread.sleep(100 + random.nextInt(2900));
          service.resume();
        }
      }
      workload.stopClients();
      service.kill();
      f.kills++;
      f.restarted(service.start());
      workload.checkAll(true);
      workload.verifyAll();
      workload.checkAll(false);
      if (f.failures.isEmpty()) {
        f.killsSurvived++;
      }
      if (!f.failures.isEmpty()) {
        f.failures.add("the first error the service logged: " + service.firstLoggedError());
      }
    } finally {
      f.runtimeMillis = (System.nanoTime() - t0) / 1_000_000;
      System.out.println(f.markdown());
      writeReport();
    }
    assertClean(f);
    assertEquals(f.kills, f.killsSurvived, "kills survived");
    ServiceProcess.deleteRecursively(dir);
  }

  @Test
  @Order(3)
  void every_read_returns_the_latest_completed_write_or_one_in_flight() throws Exception {
    Figures f = new Figures("History check: concurrent writes and reads on overlapping ranges");
    register(f);
    Path dir = workDir("history");
    long t0 = System.nanoTime();
    try (ServiceProcess service = new ServiceProcess(dir)) {
      service.start();
      Workload workload = new Workload(service, f, Duration.ofSeconds(60));
      new History(service, workload.http(), f).run(3, 3, HISTORY_SECONDS * 1000L, SEED ^ 0x4157);
      if (!f.failures.isEmpty()) {
        f.failures.add("the first error the service logged: " + service.firstLoggedError());
      }
    } finally {
      f.runtimeMillis = (System.nanoTime() - t0) / 1_000_000;
      System.out.println(f.markdown());
      writeReport();
    }
    assertClean(f);
    assertEquals(0, f.historyViolations, "history violations");
    // A read racing an overlapping write must see each sector whole: the engine holds its chunks'
    // I/O locks around every file read and write.
    assertEquals(0, f.historyTornSectors, "torn sectors under concurrent writes");
    assertTrue(f.historyReads > 0, "reads checked");
    assertTrue(f.historyDataPortReads > 0, "reads through the data port checked");
    assertTrue(f.writesAckedViaDataPort > 0, "writes through the data port in the history");
    ServiceProcess.deleteRecursively(dir);
  }

  @AfterAll
  static void report() throws IOException {
    writeReport();
  }

  private static void assertClean(Figures f) {
    assertEquals(List.of(), f.failures, "failures");
    assertEquals(0, f.durableBytesLost, "acknowledged-durable bytes lost");
    assertEquals(0, f.foreignSectors, "sectors with foreign content");
    assertEquals(0, f.corruptResults, "corrupt checker results");
    assertEquals(0, f.unexpectedStatuses, "unexpected HTTP statuses");
  }

  private static synchronized void register(Figures f) {
    System.out.printf(
        "reliability: %s; seed %d (repeat with -Dfvdisk.http.seed=%d)%n", f.title, SEED, SEED);
    REPORT.add(f);
  }

  private static synchronized void writeReport() throws IOException {
    StringBuilder b = new StringBuilder("# fvdisk reliability report\n\n");
    b.append("Configuration: ")
        .append(KILLS)
        .append(" kill iterations, ")
        .append(SOAK_SECONDS)
        .append(" s soak, ")
        .append(HISTORY_SECONDS)
        .append(" s history, ")
        .append(CLIENTS)
        .append(" clients, seed ")
        .append(SEED)
        .append(", ")
        .append(Runtime.getRuntime().availableProcessors())
        .append(" cores, images ")
        .append(
            "s3".equalsIgnoreCase(System.getenv("FVDISK_STORAGE_BACKEND"))
                ? "in the bucket (fvdisk.storage.backend=s3)"
                : "in local files")
        .append(".\n\n");
    for (Figures f : REPORT) {
      b.append(f.markdown());
    }
    Path report = Path.of("target", "reliability-report.md");
    Files.createDirectories(report.getParent());
    Files.writeString(report, b.toString(), StandardCharsets.UTF_8);
  }

  private static Path workDir(String name) throws IOException {
    return Files.createTempDirectory(
        Files.createDirectories(Path.of("target", "reliability")), name + "-");
  }
}
