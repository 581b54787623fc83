package dev.fvdisk.reliability;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Kill -9 while snapshots are taken and deleted: the harness of {@link
 * HttpReliabilityIntegrationTest} (the packaged service as a child process, self-describing
 * sectors, the crash oracle of {@link ImageModel}) with zero operations among the writes and a
 * snapshot client ({@link Snapshots}) taking snapshots and deleting random ones.
 *
 * <p>Per iteration: the clients write and zero ranges of two plain images while the snapshot client
 * works; SIGKILL after a random 0.2 to 2 s. Every fourth iteration the clients stop first and the
 * service stays idle for 2 to 3 s before the kill, long enough for background compaction of the
 * chunks zeroing freed to start. Every seventh restart is killed again during start-up. After the
 * restart: every image is checked ({@code ok} or {@code leaks}, never {@code corrupt}; every fifth
 * time with repair), each image's snapshot list is checked against what the clients were told,
 * every listed snapshot is read in full and judged, and then every image.
 *
 * <p>CI default: 20 iterations, at most 24 snapshots per image. Long configuration (see
 * docs/reliability.md): {@code -Dfvdisk.http.snapshot.kills=150 -Dfvdisk.http.snapshot.max=120}.
 * The seed ({@code -Dfvdisk.http.seed}) repeats the random choices, not the timing. Figures go to
 * {@code target/reliability-snapshot-report.md} and standard output; on failure the data directory
 * and the service log stay under {@code target/reliability/}.
 */
class SnapshotKillIntegrationTest {

  private static final int KILLS = Integer.getInteger("fvdisk.http.snapshot.kills", 20);
  private static final int MAX_SNAPSHOTS = Integer.getInteger("fvdisk.http.snapshot.max", 24);
  private static final int CLIENTS = Integer.getInteger("fvdisk.http.clients", 4);
  private static final long SEED = Long.getLong("fvdisk.http.seed", new SecureRandom().nextLong());
  private static final int ZERO_PERCENT = 12;
  private static final int REPAIR_EVERY = 5;
  private static final int STARTUP_KILL_EVERY = 7;
  private static final int IDLE_BEFORE_KILL_EVERY = 4;

  @Test
  void sigkill_while_snapshots_are_taken_and_deleted_keeps_every_snapshot_and_durable_write()
      throws Exception {
    Figures f =
        new Figures(
            "Snapshot kill test: SIGKILL among writes, zeroes and snapshots, "
                + KILLS
                + " iterations");
    System.out.printf(
        "reliability: %s; seed %d (repeat with -Dfvdisk.http.seed=%d)%n", f.title, SEED, SEED);
    Random random = new Random(SEED ^ 0x5A4B);
    Path dir =
        Files.createTempDirectory(
            Files.createDirectories(Path.of("target", "reliability")), "snapshot-kill-");
    long t0 = System.nanoTime();
    try (ServiceProcess service = new ServiceProcess(dir)) {
      f.note("first start-up (no recovery) took " + service.start() + " ms");
      f.note("seed " + SEED + ", at most " + MAX_SNAPSHOTS + " snapshots per image");
      Workload workload = new Workload(service, f, Duration.ofSeconds(60)).withZeros(ZERO_PERCENT);
      workload.createSnapshotImages();
      Snapshots snapshots = new Snapshots(service, workload, f, MAX_SNAPSHOTS);
      long lastReady = 5_000;
      for (int i = 0; i < KILLS && f.failures.isEmpty(); i++) {
        f.iterations++;
        long killsBefore = f.kills;
        workload.startClients(CLIENTS, SEED + i);
        snapshots.start(SEED + i);
        boolean idle = i % IDLE_BEFORE_KILL_EVERY == IDLE_BEFORE_KILL_EVERY - 1;
        Thread.sleep(random.nextInt(100) < 10 ? random.nextInt(200) : 200 + random.nextInt(1800));
        if (idle) {
          // Every request answered, then quiet: compaction may be moving chunks at the kill.
          workload.stopClients();
          snapshots.stop();
          Thread.sleep(2000 + random.nextInt(1000));
        }
        service.kill();
        f.kills++;
        if (!idle) {
          workload.stopClients();
          snapshots.stop();
        }
        if (i % STARTUP_KILL_EVERY == STARTUP_KILL_EVERY - 1) {
          service.launch();
          Thread.sleep(random.nextLong(Math.max(1, lastReady)));
          service.kill();
          f.kills++;
          f.killsDuringStartup++;
        }
        lastReady = service.start();
        f.restarted(lastReady);
        workload.checkAll(i % REPAIR_EVERY == REPAIR_EVERY - 1);
        // Snapshots first: a new snapshot is judged against the epoch the image verification ends.
        snapshots.verify(random);
        workload.verifyAll();
        if (f.failures.isEmpty()) {
          f.killsSurvived += f.kills - killsBefore;
        }
        System.out.printf(
            "reliability: snapshots %d/%d iterations, %d kills survived, %d snapshots taken, %d"
                + " deleted, %d snapshot reads verified%n",
            i + 1,
            KILLS,
            f.killsSurvived,
            f.snapshotsCreated,
            f.snapshotDeletesAcked,
            f.snapshotsFirstVerified + f.snapshotsReverified);
      }
      if (f.failures.isEmpty()) {
        // Reclaim what the kills leaked; a check afterwards must find the images clean, and every
        // snapshot and image must still read the same: repair took no chunk still in use.
        workload.checkAll(true);
        long leaksBefore = f.checksLeaks;
        workload.checkAll(false);
        assertEquals(leaksBefore, f.checksLeaks, "leaks found right after a repair");
        snapshots.verify(random);
        workload.verifyAll();
      }
      if (!f.failures.isEmpty()) {
        f.failures.add("the first error the service logged: " + service.firstLoggedError());
      }
    } finally {
      f.runtimeMillis = (System.nanoTime() - t0) / 1_000_000;
      System.out.println(f.markdown());
      Path report = Path.of("target", "reliability-snapshot-report.md");
      Files.createDirectories(report.getParent());
      Files.writeString(
          report, "# fvdisk snapshot kill report\n\n" + f.markdown(), StandardCharsets.UTF_8);
    }
    assertEquals(List.of(), f.failures, "failures");
    assertEquals(0, f.durableBytesLost, "acknowledged-durable bytes lost");
    assertEquals(0, f.foreignSectors, "sectors with foreign content");
    assertEquals(0, f.corruptResults, "corrupt checker results");
    assertEquals(0, f.unexpectedStatuses, "unexpected HTTP statuses");
    assertEquals(0, f.snapshotsLost, "created snapshots missing");
    assertEquals(0, f.snapshotsResurrected, "deleted snapshots listed");
    assertEquals(KILLS, f.iterations, "iterations");
    assertEquals(f.kills, f.killsSurvived, "kills survived");
    assertTrue(f.snapshotsCreated > 0 && f.snapshotDeletesAcked > 0, "snapshots taken and deleted");
    assertTrue(f.snapshotsFirstVerified > 0, "snapshots verified");
    assertTrue(f.zerosAcked > 0, "zeroes acknowledged");
    ServiceProcess.deleteRecursively(dir);
  }
}
