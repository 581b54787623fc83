package dev.fvdisk.nbd;

import static dev.fvdisk.nbd.Nbd.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.util.Arrays;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * Commands on byte transcripts, run one after another (a direct executor) so the replies come in
 * request order: every command, its flags, its range checks, and the errors of the protocol's
 * table. Two tests use a real pool, to see which requests the connection's thread serves itself.
 */
class TransmissionTest {

  private static final int SIZE = 1 << 20;

  private MemoryDisk disk = new MemoryDisk("vm-1", SIZE, false);
  private boolean structured = true;
  private boolean baseAllocation = true;
  private boolean readOnly;
  private final Semaphore serverBytes = new Semaphore(64 << 20);
  private final PayloadBuffers buffers = new PayloadBuffers(32 << 20, 64 << 20);
  private String ended;
  private Executor workers = Runnable::run;
  private long slowInlineNanos = Transmission.SLOW_INLINE_NANOS;

  private DataInputStream run(Transcript client) throws Exception {
    ByteArrayOutputStream written = new ByteArrayOutputStream();
    Handshake.Agreed agreed =
        new Handshake.Agreed(
            "vm-1",
            new Exports.Export(disk, readOnly, "d"),
            structured,
            baseAllocation,
            0,
            client.input(),
            new DataOutputStream(written));
    Transmission t =
        new Transmission(
            agreed,
            Channels.newChannel(agreed.in()),
            Channels.newChannel(written),
            NbdLimits.DEFAULTS,
            serverBytes,
            buffers,
            workers,
            NbdObserver.NONE,
            () -> false,
            () -> {});
    t.slowInlineNanos = slowInlineNanos;
    ended = t.run();
    assertThat(serverBytes.availablePermits()).as("every byte given back").isEqualTo(64 << 20);
    return new DataInputStream(new ByteArrayInputStream(written.toByteArray()));
  }

  private static byte[] pattern(int length, int seed) {
    byte[] b = new byte[length];
    for (int i = 0; i < length; i++) {
      b[i] = (byte) (i * 31 + seed);
    }
    return b;
  }

  @Test
  void writeThenReadAtAnUnalignedOffsetWithStructuredAndSimpleReplies() throws Exception {
    byte[] data = pattern(5, 7);
    for (boolean sr : new boolean[] {true, false}) {
      structured = sr;
      disk = new MemoryDisk("vm-1", SIZE, false);
      DataInputStream in =
          run(
              new Transcript()
                  .request(CMD_FLAG_FUA, CMD_WRITE, 1, 3, 5)
                  .raw(data)
                  .request(0, CMD_READ, 2, 3, 5)
                  .request(0, CMD_READ, 3, 0, 0)
                  .request(0, CMD_DISC, 4, 0, 0));
      Transcript.Reply write = Transcript.reply(in, 0);
      assertThat(write.structured()).isFalse();
      assertThat(write.error()).isZero();
      assertThat(write.cookie()).isEqualTo(1);
      assertThat(disk.durableChanges).as("FUA is a durable write").isEqualTo(1);
      Transcript.Reply read = Transcript.reply(in, 5);
      assertThat(read.cookie()).isEqualTo(2);
      if (sr) {
        assertThat(read.type()).isEqualTo(REPLY_TYPE_OFFSET_DATA);
        assertThat(read.flags()).isEqualTo(REPLY_FLAG_DONE);
        ByteBuffer p = ByteBuffer.wrap(read.payload());
        assertThat(p.getLong()).isEqualTo(3);
        assertThat(Arrays.copyOfRange(read.payload(), 8, 13)).isEqualTo(data);
      } else {
        assertThat(read.payload()).isEqualTo(data);
      }
      Transcript.Reply empty = Transcript.reply(in, 0);
      assertThat(empty.error()).isZero();
      if (sr) {
        assertThat(empty.type()).isEqualTo(REPLY_TYPE_NONE);
      }
      assertThat(in.available()).isZero();
      assertThat(ended).contains("disconnected");
    }
  }

  @Test
  void aWholeMebibyteGoesInAndOutWithStructuredAndSimpleReplies() throws Exception {
    byte[] data = pattern(SIZE, 9);
    for (boolean sr : new boolean[] {true, false}) {
      structured = sr;
      disk = new MemoryDisk("vm-1", SIZE, false);
      DataInputStream in =
          run(
              new Transcript()
                  .request(0, CMD_WRITE, 1, 0, SIZE)
                  .raw(data)
                  .request(0, CMD_READ, 2, 0, SIZE)
                  .request(0, CMD_READ, 3, 4096, 4)
                  .request(0, CMD_DISC, 4, 0, 0));
      assertThat(Transcript.reply(in, 0).error()).isZero();
      Transcript.Reply whole = Transcript.reply(in, SIZE);
      Transcript.Reply four = Transcript.reply(in, 4);
      int skip = sr ? 8 : 0; // a structured chunk starts with the offset
      assertThat(Arrays.copyOfRange(whole.payload(), skip, skip + SIZE)).isEqualTo(data);
      assertThat(Arrays.copyOfRange(four.payload(), skip, skip + 4))
          .isEqualTo(Arrays.copyOfRange(data, 4096, 4100));
      assertThat(in.available()).isZero();
    }
  }

  @Test
  void theErrorsOfTheProtocolTable() throws Exception {
    DataInputStream in =
        run(
            new Transcript()
                .request(0, CMD_READ, 1, SIZE - 1, 2) // read past the end
                .request(0, CMD_WRITE, 2, SIZE - 1, 2) // write past the end: payload drained
                .raw(new byte[2])
                .request(0, CMD_WRITE_ZEROES, 3, SIZE, 1) // zero past the end
                .request(0, CMD_TRIM, 4, SIZE, 1) // trim past the end
                .request(0, CMD_BLOCK_STATUS, 5, SIZE, 1) // status past the end
                .request(0x20, CMD_WRITE, 6, 0, 3) // unknown flag: payload drained
                .raw(new byte[3])
                .request(0, 42, 7, 0, 0) // unknown command
                .request(0, CMD_FLUSH, 8, 1, 0) // flush with an offset
                .request(0, CMD_READ, 9, 0, (32 << 20) + 1) // read over the maximum
                .request(CMD_FLAG_NO_HOLE, CMD_WRITE, 10, 0, 1) // flag of another command
                .raw(new byte[1])
                .request(0, CMD_READ, 11, -1L, 1) // offset 2^64 - 1, unsigned
                .request(0, CMD_WRITE, 12, 0, 0) // zero-length write: fine
                .request(0, CMD_DISC, 13, 0, 0));
    int[] expected = {
      EINVAL, ENOSPC, ENOSPC, EINVAL, EINVAL, EINVAL, EINVAL, EINVAL, EINVAL, EINVAL, EINVAL, 0
    };
    for (int i = 0; i < expected.length; i++) {
      Transcript.Reply r = Transcript.reply(in, 0);
      assertThat(r.cookie()).isEqualTo(i + 1);
      assertThat(r.error()).as("request %d", i + 1).isEqualTo(expected[i]);
      boolean readOrStatus = i == 0 || i == 4 || i == 8 || i == 10;
      assertThat(r.structured()).as("request %d", i + 1).isEqualTo(readOrStatus);
    }
    assertThat(in.available()).isZero();
    assertThat(disk.extents(0, SIZE, 10)).hasSize(1);
  }

  @Test
  void aReadOnlyExportRefusesChangesWithEpermButFlushes() throws Exception {
    readOnly = true;
    DataInputStream in =
        run(
            new Transcript()
                .request(0, CMD_WRITE, 1, 0, 4)
                .raw(new byte[4])
                .request(0, CMD_WRITE_ZEROES, 2, 0, 4)
                .request(0, CMD_TRIM, 3, 0, 4)
                .request(0, CMD_FLUSH, 4, 0, 0));
    for (int expected : new int[] {EPERM, EPERM, EPERM, 0}) {
      assertThat(Transcript.reply(in, 0).error()).isEqualTo(expected);
    }
    assertThat(disk.flushes).isEqualTo(1);
    assertThat(ended).contains("closed the connection");
  }

  @Test
  void zeroesAndFlushReachTheDisk() throws Exception {
    byte[] data = pattern(8192, 1);
    DataInputStream in =
        run(
            new Transcript()
                .request(0, CMD_WRITE, 1, 0, 8192)
                .raw(data)
                .request(CMD_FLAG_FUA | CMD_FLAG_NO_HOLE, CMD_WRITE_ZEROES, 2, 100, 1000)
                .request(CMD_FLAG_FUA, CMD_TRIM, 3, 0, 4096)
                .request(0, CMD_FLUSH, 4, 0, 0));
    for (int i = 0; i < 4; i++) {
      assertThat(Transcript.reply(in, 0).error()).isZero();
    }
    ByteBuffer back = ByteBuffer.allocate(8192);
    disk.read(0, back);
    byte[] expected = data.clone();
    Arrays.fill(expected, 0, 4096, (byte) 0);
    assertThat(back.array())
        .as("the trimmed and the zeroed ranges read zeros, the rest as written")
        .isEqualTo(expected);
    assertThat(disk.durableChanges)
        .as("zeroes with NO_HOLE written as data, then the trim zeroed, both with FUA")
        .isEqualTo(2);
    assertThat(disk.flushes).as("only FLUSH").isEqualTo(1);
  }

  @Test
  void smallReadsAndWriteBackWritesAreServedOnTheConnectionsThreadTheRestByWorkers()
      throws Exception {
    slowInlineNanos = Long.MAX_VALUE; // a slow machine must not look like a slow disk here
    ExecutorService pool = Executors.newFixedThreadPool(2, r -> new Thread(r, "worker"));
    workers = pool;
    Map<String, Set<String>> threads = new ConcurrentHashMap<>();
    disk.beforeEach =
        command ->
            threads
                .computeIfAbsent(command, c -> ConcurrentHashMap.newKeySet())
                .add(Thread.currentThread().getName().equals("worker") ? "worker" : "connection");
    Transcript client = new Transcript();
    for (int i = 0; i < 8; i++) {
      client.request(0, CMD_WRITE, i, i * 4096L, 4096).raw(pattern(4096, i));
      client.request(0, CMD_READ, 100 + i, i * 4096L, Transmission.INLINE_MAX_BYTES);
    }
    client
        .request(CMD_FLAG_FUA, CMD_WRITE, 200, 0, 4096)
        .raw(pattern(4096, 9))
        .request(0, CMD_READ, 201, 0, Transmission.INLINE_MAX_BYTES + 1)
        .request(0, CMD_WRITE_ZEROES, 202, 8192, 4096)
        .request(0, CMD_FLUSH, 203, 0, 0);
    try {
      DataInputStream in = run(client);
      Set<Long> answered = new java.util.HashSet<>();
      for (int i = 0; i < 20; i++) {
        Transcript.Reply r = Transcript.reply(in, 0);
        assertThat(r.error()).isZero();
        answered.add(r.cookie());
      }
      assertThat(answered).hasSize(20);
    } finally {
      pool.shutdown();
    }
    assertThat(threads)
        .containsEntry("write", Set.of("connection"))
        .containsEntry("read", Set.of("connection", "worker"))
        .containsEntry("durable write", Set.of("worker"))
        .containsEntry("zero", Set.of("worker"))
        .containsEntry("flush", Set.of("worker"));
  }

  @Test
  void afterASlowReadTheNextSmallReadsAreServedInParallel() throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(8);
    workers = pool;
    AtomicInteger inProgress = new AtomicInteger();
    AtomicInteger mostAtOnce = new AtomicInteger();
    disk.beforeEach =
        command -> {
          mostAtOnce.accumulateAndGet(inProgress.incrementAndGet(), Math::max);
          try {
            Thread.sleep(5); // a page-cache miss, many times over
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          } finally {
            inProgress.decrementAndGet();
          }
        };
    Transcript client = new Transcript();
    for (int i = 0; i < 16; i++) {
      client.request(0, CMD_READ, i, i * 4096L, 4096);
    }
    try {
      DataInputStream in = run(client);
      for (int i = 0; i < 16; i++) {
        assertThat(Transcript.reply(in, 0).error()).isZero();
      }
    } finally {
      pool.shutdown();
    }
    assertThat(mostAtOnce.get())
        .as("the first read, served inline, was slow; those behind it went to the workers")
        .isGreaterThan(1);
  }

  @Test
  void blockStatusReportsHolesAndDataAndOneExtentWithReqOne() throws Exception {
    disk.write(4096, ByteBuffer.wrap(new byte[4096]), dev.fvdisk.service.Durability.BUFFERED);
    DataInputStream in =
        run(
            new Transcript()
                .request(0, CMD_BLOCK_STATUS, 1, 0, 3 * 4096)
                .request(CMD_FLAG_REQ_ONE, CMD_BLOCK_STATUS, 2, 1000, 3 * 4096));
    ByteBuffer all = ByteBuffer.wrap(Transcript.reply(in, 0).payload());
    assertThat(all.getInt()).isEqualTo(BASE_ALLOCATION_ID);
    assertThat(
            new long[] {
              all.getInt(), all.getInt(), all.getInt(), all.getInt(), all.getInt(), all.getInt()
            })
        .containsExactly(4096, STATE_HOLE | STATE_ZERO, 4096, 0, 4096, STATE_HOLE | STATE_ZERO);
    assertThat(all.hasRemaining()).isFalse();
    Transcript.Reply one = Transcript.reply(in, 0);
    assertThat(one.type()).isEqualTo(REPLY_TYPE_BLOCK_STATUS);
    ByteBuffer p = ByteBuffer.wrap(one.payload());
    p.getInt();
    assertThat(p.getInt()).isEqualTo(4096 - 1000);
    assertThat(p.getInt()).isEqualTo(STATE_HOLE | STATE_ZERO);
    assertThat(p.hasRemaining()).isFalse();
  }

  @Test
  void blockStatusNeedsTheContext() throws Exception {
    baseAllocation = false;
    DataInputStream in = run(new Transcript().request(0, CMD_BLOCK_STATUS, 1, 0, 4096));
    Transcript.Reply r = Transcript.reply(in, 0);
    assertThat(r.error()).isEqualTo(EINVAL);
    assertThat(new String(r.payload(), 6, r.payload().length - 6)).contains("base:allocation");
  }

  @Test
  void aBrokenStreamDropsTheConnection() {
    assertThatThrownBy(() -> run(new Transcript().raw(new byte[28])))
        .isInstanceOf(NbdProtocolException.class)
        .hasMessageContaining("request magic");
    assertThatThrownBy(() -> run(new Transcript().request(0, CMD_WRITE, 1, 0, (32 << 20) + 1)))
        .isInstanceOf(NbdProtocolException.class)
        .hasMessageContaining("over the maximum");
    assertThatThrownBy(
            () -> run(new Transcript().request(0, CMD_WRITE, 1, 0, 100).raw(new byte[10])))
        .isInstanceOf(IOException.class)
        .hasMessageContaining("inside a write's payload");
  }
}
