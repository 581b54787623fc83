package dev.fvdisk.nbd;

import static dev.fvdisk.nbd.Nbd.*;
import static org.assertj.core.api.Assertions.assertThat;

import dev.fvdisk.reliability.ServiceProcess;
import dev.fvdisk.reliability.Ticks;
import dev.fvdisk.testing.SectorOracle;
import dev.fvdisk.testing.SectorStamp;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * Kill -9 of the service while NBD clients write: each of several connections writes stamped
 * sectors, some with FUA, and now and then flushes; the service is killed at a random moment,
 * restarted, and every sector of the image is read back over HTTP and judged by the shared {@link
 * SectorOracle}. Durable are the writes answered with FUA, and every write answered before some
 * connection sent a FLUSH that was answered (CAN_MULTI_CONN: a flush on any connection covers them
 * all). Everything else may be old or new, never anything else.
 *
 * <p>CI runs {@code fvdisk.nbd.kills} = 20 iterations; the seed is printed and can be fixed with
 * {@code -Dfvdisk.nbd.seed} (it repeats the random choices, not the timing). On failure the data
 * directory and the service log stay under {@code target/nbd-kill/}.
 */
class NbdKillIntegrationTest {

  private static final int KILLS = Integer.getInteger("fvdisk.nbd.kills", 20);
  private static final int CONNECTIONS = 4;
  private static final long SEED = Long.getLong("fvdisk.nbd.seed", new SecureRandom().nextLong());
  private static final int SECTORS = 16 * 2048; // 16 MiB
  private static final long SIZE = (long) SECTORS * SectorStamp.SECTOR_BYTES;
  private static final long IMAGE_TAG = 0x4E42_444B_0000_0001L;

  /** One write as the oracle sees it; {@code end} is MAX_VALUE until its answer arrived. */
  private static final class Write implements SectorOracle.Write {
    final long id;
    final int first;
    final int sectors;
    final boolean fua;
    final long start;
    volatile long end = Long.MAX_VALUE;

    Write(long id, int first, int sectors, boolean fua, long start) {
      this.id = id;
      this.first = first;
      this.sectors = sectors;
      this.fua = fua;
      this.start = start;
    }

    @Override
    public long id() {
      return id;
    }

    @Override
    public long firstSector() {
      return first;
    }

    @Override
    public long endSector() {
      return first + sectors;
    }

    @Override
    public long start() {
      return start;
    }

    @Override
    public long end() {
      return end;
    }
  }

  /** An answered flush: sent at {@code sent}, it covers every write answered before that. */
  private record Flush(long sent) {}

  private final HttpClient http =
      HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
  private final AtomicLong writeIds = new AtomicLong();
  private final ConcurrentLinkedQueue<Throwable> clientFailures = new ConcurrentLinkedQueue<>();

  @Test
  void sigkill_while_nbd_clients_write_loses_no_durable_write() throws Exception {
    System.out.println("nbd kill test: seed " + SEED + ", " + KILLS + " kills");
    Random random = new Random(SEED);
    Path dir = Files.createDirectories(Path.of("target", "nbd-kill"));
    Path work = Files.createTempDirectory(dir, "run-");
    long verified = 0;
    long durable = 0;
    try (ServiceProcess service = new ServiceProcess(work)) {
      service.start();
      post(service, "/api/v1/images", "{\"name\":\"vm\",\"sizeBytes\":" + SIZE + "}", 201);
      long[] before = new long[SECTORS];
      for (int round = 0; round < KILLS; round++) {
        ConcurrentLinkedQueue<Write> writes = new ConcurrentLinkedQueue<>();
        ConcurrentLinkedQueue<Flush> flushes = new ConcurrentLinkedQueue<>();
        int port = service.current().nbdPort;
        List<Thread> clients = new ArrayList<>();
        for (int c = 0; c < CONNECTIONS; c++) {
          long clientSeed = random.nextLong();
          Thread t = new Thread(() -> writeUntilKilled(port, clientSeed, writes, flushes));
          t.start();
          clients.add(t);
        }
        Thread.sleep(300 + random.nextInt(1500));
        service.kill();
        for (Thread t : clients) {
          t.join(30_000);
          assertThat(t.isAlive()).as("a client ends once the service is gone").isFalse();
        }
        assertThat(clientFailures).as("what the clients saw before the kill").isEmpty();
        service.start();

        long latestFlush = flushes.stream().mapToLong(Flush::sent).max().orElse(-1);
        SectorOracle oracle =
            SectorOracle.of(
                before, writes, w -> w.fua && w.end != Long.MAX_VALUE || w.end < latestFlush);
        byte[] all = get(service, "/api/v1/images/vm/data");
        assertThat(all).hasSize((int) SIZE);
        long[] found = new long[SECTORS];
        for (int s = 0; s < SECTORS; s++) {
          found[s] = SectorStamp.identify(all, s * SectorStamp.SECTOR_BYTES, s, IMAGE_TAG, 0);
          SectorOracle.Judgement j = oracle.judge(s, found[s]);
          if (j != SectorOracle.Judgement.ALLOWED) {
            throw new AssertionError(
                "round "
                    + round
                    + ", seed "
                    + SEED
                    + ": sector "
                    + s
                    + " holds "
                    + found[s]
                    + " ("
                    + j
                    + "); latest durable write started at tick "
                    + oracle.latestDurableStart(s)
                    + "\n"
                    + service.logTail());
          }
          if (oracle.underDurableWrite(s)) {
            durable++;
          }
        }
        verified += writes.size();
        String check = post(service, "/api/v1/images/vm/check", "", 200);
        assertThat(check).as("check after the restart").doesNotContain("corrupt");
        before = found;
      }
    }
    System.out.printf(
        "nbd kill test: %d kills survived, %d writes judged, %d sector checks under a durable"
            + " write%n",
        KILLS, verified, durable);
    assertThat(durable).as("some writes were durable before the kills").isPositive();
    ServiceProcess.deleteRecursively(work);
  }

  /**
   * One client: writes stamped sectors (a quarter with FUA) and flushes now and then, one request
   * at a time, until the connection breaks when the service is killed.
   */
  private void writeUntilKilled(
      int port,
      long seed,
      ConcurrentLinkedQueue<Write> writes,
      ConcurrentLinkedQueue<Flush> flushes) {
    Random random = new Random(seed);
    try (NbdTestClient client = NbdTestClient.open(port, "vm")) {
      long cookie = 0;
      while (true) {
        if (random.nextInt(10) == 0) {
          long sent = Ticks.next();
          client.send(0, CMD_FLUSH, ++cookie, 0, 0, null);
          client.flushOut();
          Transcript.Reply r = client.reply();
          assertThat(r.error()).isZero();
          flushes.add(new Flush(sent));
          continue;
        }
        int sectors = 1 + random.nextInt(random.nextInt(8) == 0 ? 512 : 32);
        int first = random.nextInt(SECTORS - sectors + 1);
        boolean fua = random.nextInt(4) == 0;
        Write w = new Write(writeIds.incrementAndGet(), first, sectors, fua, Ticks.next());
        byte[] payload = new byte[sectors * SectorStamp.SECTOR_BYTES];
        SectorStamp.fill(payload, IMAGE_TAG, w.id, first);
        writes.add(w);
        client.send(
            fua ? CMD_FLAG_FUA : 0,
            CMD_WRITE,
            ++cookie,
            (long) first * 512,
            payload.length,
            payload);
        client.flushOut();
        Transcript.Reply r = client.reply();
        assertThat(r.error()).isZero();
        w.end = Ticks.next();
      }
    } catch (IOException e) {
      // The service was killed: the connection broke; writes without an answer stay unbounded.
    } catch (RuntimeException | AssertionError e) {
      clientFailures.add(e);
    }
  }

  private String post(ServiceProcess service, String path, String json, int status)
      throws IOException, InterruptedException {
    HttpResponse<String> r =
        http.send(
            HttpRequest.newBuilder(service.current().base.resolve(path.substring(1)))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(json))
                .build(),
            HttpResponse.BodyHandlers.ofString());
    assertThat(r.statusCode()).as(r.body()).isEqualTo(status);
    return r.body();
  }

  private byte[] get(ServiceProcess service, String path) throws IOException, InterruptedException {
    URI uri = service.current().base.resolve(path.substring(1));
    HttpResponse<byte[]> r =
        http.send(HttpRequest.newBuilder(uri).build(), HttpResponse.BodyHandlers.ofByteArray());
    assertThat(r.statusCode()).isEqualTo(200);
    return r.body();
  }
}
