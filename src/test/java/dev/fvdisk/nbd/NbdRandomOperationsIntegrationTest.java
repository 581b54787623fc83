package dev.fvdisk.nbd;

import static dev.fvdisk.nbd.Nbd.*;
import static io.restassured.RestAssured.given;
import static org.assertj.core.api.Assertions.assertThat;

import dev.fvdisk.testing.SectorStamp;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Random operations over real sockets against a model, many seeds: batches of pipelined requests
 * over two connections to one image (a plain image, or a clone with copy-on-read of a stamped
 * base), replies taken in whatever order the server sends them. Every sector is written as a {@link
 * SectorStamp}, so a read tells exactly which write (or zeros, or the base) a sector holds.
 *
 * <p>The model keeps, per sector, the set of write ids it may hold. Requests of one batch are in
 * flight together and have no order: a sector written by several of them may hold any, and a read
 * in the batch may see what the sector held before or any write of the batch over it. A read
 * outside every write of its batch pins the sector to what it saw. At the end, the whole disk is
 * read over HTTP and judged the same way, so what NBD wrote is what HTTP reads.
 */
class NbdRandomOperationsIntegrationTest extends NbdServiceTestSupport {

  private static final int SECTORS = 8 * 1024; // 4 MiB
  private static final long SIZE = (long) SECTORS * SectorStamp.SECTOR_BYTES;
  private static final int BATCHES = 40;
  private static final long IMAGE_TAG_BASE = 0x4E42_4400_0000_0000L;
  private static final long BASE_TAG = 0x4E42_4442_0000_0000L;

  /** A request of a batch, with what the model needs of it. */
  private record Op(int type, int flags, long cookie, int firstSector, int sectors, long writeId) {
    int endSector() {
      return firstSector + sectors;
    }

    boolean changes() {
      return type == CMD_WRITE || type == CMD_WRITE_ZEROES || type == CMD_TRIM;
    }
  }

  @ParameterizedTest(name = "seed {0}")
  @ValueSource(ints = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20})
  void pipelined_random_operations_match_the_model(int seed) throws IOException {
    Random random = new Random(seed);
    long imageTag = IMAGE_TAG_BASE + seed;
    boolean clone = seed % 2 == 0;
    String name = "random-" + seed;
    List<Set<Long>> model = new ArrayList<>(SECTORS);
    for (int s = 0; s < SECTORS; s++) {
      model.add(new HashSet<>(Set.of(SectorStamp.ZERO)));
    }
    long baseTag = 0;
    if (clone) {
      baseTag = BASE_TAG + seed;
      String base = name + "-base";
      create(Map.of("name", base, "sizeBytes", SIZE));
      // The base holds stamps in its first half, zeros after.
      ByteBuffer stamps = ByteBuffer.allocate((int) SIZE / 2);
      SectorStamp.fillBase(stamps, baseTag, 0, SECTORS / 2);
      httpWrite(base, 0, stamps.array());
      patch(base, Map.of("readOnly", true));
      create(Map.of("name", name, "base", base, "copyOnRead", true));
      for (int s = 0; s < SECTORS / 2; s++) {
        model.set(s, new HashSet<>(Set.of(SectorStamp.BASE)));
      }
    } else {
      create(Map.of("name", name, "sizeBytes", SIZE));
    }

    long nextId = 1;
    long nextCookie = 1;
    try (NbdTestClient a = NbdTestClient.open(nbd.port(), name);
        NbdTestClient b = NbdTestClient.open(nbd.port(), name)) {
      assertThat(a.sizeBytes).isEqualTo(SIZE);
      NbdTestClient[] clients = {a, b};
      for (int batch = 0; batch < BATCHES; batch++) {
        int count = 1 + random.nextInt(16);
        List<Op> ops = new ArrayList<>();
        Map<Long, Op> byCookie = new HashMap<>();
        int[] sent = new int[2];
        for (int i = 0; i < count; i++) {
          int sectors = 1 + random.nextInt(random.nextInt(10) == 0 ? 256 : 24);
          int first = random.nextInt(SECTORS - sectors + 1);
          int kind = random.nextInt(100);
          Op op;
          long cookie = nextCookie++;
          if (kind < 40) {
            op =
                new Op(
                    CMD_WRITE,
                    random.nextInt(4) == 0 ? CMD_FLAG_FUA : 0,
                    cookie,
                    first,
                    sectors,
                    nextId++);
          } else if (kind < 75) {
            op = new Op(CMD_READ, 0, cookie, first, sectors, 0);
          } else if (kind < 85) {
            op =
                new Op(
                    CMD_WRITE_ZEROES,
                    random.nextBoolean() ? CMD_FLAG_NO_HOLE : 0,
                    cookie,
                    first,
                    sectors,
                    SectorStamp.ZERO);
          } else if (kind < 90) {
            op = new Op(CMD_TRIM, 0, cookie, first, sectors, SectorStamp.ZERO);
          } else if (kind < 95) {
            op = new Op(CMD_BLOCK_STATUS, 0, cookie, first, sectors, 0);
          } else {
            op = new Op(CMD_FLUSH, 0, cookie, 0, 0, 0);
          }
          ops.add(op);
          byCookie.put(cookie, op);
          int c = random.nextInt(2);
          sent[c]++;
          send(clients[c], op, imageTag);
        }
        a.flushOut();
        b.flushOut();

        // What each sector may hold while this batch runs: before, or any change of the batch.
        Map<Integer, Set<Long>> during = new HashMap<>();
        for (Op op : ops) {
          if (op.changes()) {
            for (int s = op.firstSector(); s < op.endSector(); s++) {
              during.computeIfAbsent(s, k -> new HashSet<>(model.get(k))).add(op.writeId());
            }
          }
        }
        Map<Integer, Long> seenOutsideWrites = new HashMap<>();
        for (int c = 0; c < 2; c++) {
          for (int i = 0; i < sent[c]; i++) {
            Transcript.Reply reply = clients[c].reply();
            Op op = byCookie.remove(reply.cookie());
            assertThat(op).as("seed %d: a reply to a request in flight", seed).isNotNull();
            assertThat(reply.error()).as("seed %d: %s", seed, op).isZero();
            if (op.type() == CMD_READ) {
              judgeRead(seed, op, reply, imageTag, baseTag, model, during, seenOutsideWrites);
            } else if (op.type() == CMD_BLOCK_STATUS) {
              judgeStatus(seed, op, reply, model, during);
            }
          }
        }
        assertThat(byCookie).as("every request answered once").isEmpty();

        // The batch is over: its changes are candidates, overlapping ones all of them.
        Map<Integer, Set<Long>> written = new HashMap<>();
        for (Op op : ops) {
          if (op.changes()) {
            for (int s = op.firstSector(); s < op.endSector(); s++) {
              Set<Long> winners = written.computeIfAbsent(s, k -> new HashSet<>());
              winners.add(op.writeId());
              if (op.type() == CMD_TRIM) {
                // A trim is a hint: the sector may also keep what it held.
                winners.addAll(model.get(s));
              }
            }
          }
        }
        written.forEach(model::set);
        seenOutsideWrites.forEach((s, v) -> model.set(s, new HashSet<>(Set.of(v))));
      }
    }

    byte[] all =
        given()
            .port(httpPort)
            .get(IMAGES + "/" + name + "/data")
            .then()
            .statusCode(200)
            .extract()
            .asByteArray();
    assertThat(all).hasSize((int) SIZE);
    for (int s = 0; s < SECTORS; s++) {
      long found = SectorStamp.identify(all, s * SectorStamp.SECTOR_BYTES, s, imageTag, baseTag);
      assertThat(model.get(s)).as("seed %d: sector %d over HTTP", seed, s).contains(found);
    }
  }

  private void send(NbdTestClient client, Op op, long imageTag) throws IOException {
    long offset = (long) op.firstSector() * SectorStamp.SECTOR_BYTES;
    long length = (long) op.sectors() * SectorStamp.SECTOR_BYTES;
    byte[] payload = null;
    if (op.type() == CMD_WRITE) {
      payload = new byte[(int) length];
      SectorStamp.fill(payload, imageTag, op.writeId(), op.firstSector());
    }
    if (op.type() == CMD_FLUSH) {
      offset = 0;
      length = 0;
    }
    client.send(op.flags(), op.type(), op.cookie(), offset, length, payload);
  }

  private static void judgeRead(
      int seed,
      Op op,
      Transcript.Reply reply,
      long imageTag,
      long baseTag,
      List<Set<Long>> model,
      Map<Integer, Set<Long>> during,
      Map<Integer, Long> seenOutsideWrites) {
    assertThat(reply.type()).isEqualTo(REPLY_TYPE_OFFSET_DATA);
    ByteBuffer payload = ByteBuffer.wrap(reply.payload());
    assertThat(payload.getLong()).isEqualTo((long) op.firstSector() * SectorStamp.SECTOR_BYTES);
    assertThat(payload.remaining()).isEqualTo(op.sectors() * SectorStamp.SECTOR_BYTES);
    for (int i = 0; i < op.sectors(); i++) {
      int s = op.firstSector() + i;
      long found =
          SectorStamp.identify(payload, 8 + i * SectorStamp.SECTOR_BYTES, s, imageTag, baseTag);
      Set<Long> allowed = during.getOrDefault(s, model.get(s));
      assertThat(allowed).as("seed %d: sector %d read by %s", seed, s, op).contains(found);
      if (!during.containsKey(s)) {
        seenOutsideWrites.put(s, found);
      }
    }
  }

  /** A range said to read as zeros must be allowed to hold zeros. */
  private static void judgeStatus(
      int seed,
      Op op,
      Transcript.Reply reply,
      List<Set<Long>> model,
      Map<Integer, Set<Long>> during) {
    assertThat(reply.type()).isEqualTo(REPLY_TYPE_BLOCK_STATUS);
    ByteBuffer payload = ByteBuffer.wrap(reply.payload());
    assertThat(payload.getInt()).isEqualTo(BASE_ALLOCATION_ID);
    long at = (long) op.firstSector() * SectorStamp.SECTOR_BYTES;
    long end = (long) op.endSector() * SectorStamp.SECTOR_BYTES;
    assertThat(payload.remaining()).isPositive();
    while (payload.hasRemaining()) {
      long length = Integer.toUnsignedLong(payload.getInt());
      int flags = payload.getInt();
      assertThat(length).as("seed %d: no empty extent", seed).isPositive();
      if ((flags & STATE_ZERO) != 0) {
        for (long byteAt = at; byteAt < Math.min(at + length, end); byteAt += 512) {
          int s = (int) (byteAt / SectorStamp.SECTOR_BYTES);
          assertThat(during.getOrDefault(s, model.get(s)))
              .as("seed %d: sector %d reported zero by %s", seed, s, op)
              .contains(SectorStamp.ZERO);
        }
      }
      at += length;
    }
    assertThat(at).as("seed %d: the extents cover the request", seed).isGreaterThanOrEqualTo(end);
  }
}
