package dev.fvdisk.nbd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.nio.ByteBuffer;
import java.nio.channels.GatheringByteChannel;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;
import org.junit.jupiter.api.Test;

/**
 * The connection's request reader, reply writer and payload buffers, over channels that trickle.
 */
class WireBuffersTest {

  private static byte[] pattern(int length, int seed) {
    byte[] b = new byte[length];
    for (int i = 0; i < length; i++) {
      b[i] = (byte) (i * 7 + seed);
    }
    return b;
  }

  /** Takes at most {@code step} bytes per call, as a socket under pressure may. */
  private static final class TricklingSink implements GatheringByteChannel {
    final ByteArrayOutputStream received = new ByteArrayOutputStream();
    final int step;
    int calls;

    TricklingSink(int step) {
      this.step = step;
    }

    @Override
    public int write(ByteBuffer src) {
      calls++;
      int n = Math.min(step, src.remaining());
      byte[] b = new byte[n];
      src.get(b);
      received.writeBytes(b);
      return n;
    }

    @Override
    public long write(ByteBuffer[] srcs, int offset, int length) {
      calls++;
      int budget = step;
      long written = 0;
      for (int i = offset; i < offset + length && budget > 0; i++) {
        int n = Math.min(budget, srcs[i].remaining());
        byte[] b = new byte[n];
        srcs[i].get(b);
        received.writeBytes(b);
        budget -= n;
        written += n;
      }
      return written;
    }

    @Override
    public long write(ByteBuffer[] srcs) {
      return write(srcs, 0, srcs.length);
    }

    @Override
    public boolean isOpen() {
      return true;
    }

    @Override
    public void close() {}
  }

  private static byte[] replies(WritableByteChannel sink, byte[] large, byte[] small)
      throws Exception {
    ReplyOutput out = new ReplyOutput(sink);
    out.putInt(0x01020304).putShort(0x0506).putLong(0x0708090a0b0c0d0eL);
    ByteBuffer direct = ByteBuffer.allocateDirect(large.length).put(large).flip();
    out.put(direct);
    assertThat(direct.hasRemaining()).as("consumed").isFalse();
    out.put(small);
    out.put(ByteBuffer.wrap(small));
    out.flush();
    ByteBuffer expected = ByteBuffer.allocate(14 + large.length + 2 * small.length);
    expected.putInt(0x01020304).putShort((short) 0x0506).putLong(0x0708090a0b0c0d0eL);
    return expected.put(large).put(small).put(small).array();
  }

  @Test
  void repliesArriveWholeAndInOrderThroughGatheringAndPlainChannels() throws Exception {
    byte[] large = pattern(300_000, 1);
    byte[] small = pattern(100, 2);
    TricklingSink gathering = new TricklingSink(1000);
    byte[] expected = replies(gathering, large, small);
    assertThat(gathering.received.toByteArray()).isEqualTo(expected);

    TricklingSink inner = new TricklingSink(777);
    WritableByteChannel notGathering =
        new WritableByteChannel() {
          @Override
          public int write(ByteBuffer src) {
            return inner.write(src);
          }

          @Override
          public boolean isOpen() {
            return true;
          }

          @Override
          public void close() {}
        };
    replies(notGathering, large, small);
    assertThat(inner.received.toByteArray()).isEqualTo(expected);
  }

  @Test
  void smallRepliesShareOneWrite() throws Exception {
    TricklingSink sink = new TricklingSink(1 << 20);
    ReplyOutput out = new ReplyOutput(sink);
    for (int i = 0; i < 100; i++) {
      out.putInt(i).putLong(i);
      out.put(ByteBuffer.allocateDirect(4096));
    }
    assertThat(sink.calls).as("outbox of 64 KiB, 100 replies of 4108 bytes").isBetween(6, 7);
    out.flush();
    assertThat(sink.received.size()).isEqualTo(100 * 4108);
  }

  /** Hands out at most {@code step} bytes per read, then end of stream. */
  private static ReadableByteChannel trickling(byte[] content, int step) {
    ByteBuffer source = ByteBuffer.wrap(content);
    return new ReadableByteChannel() {
      @Override
      public int read(ByteBuffer dst) {
        if (!source.hasRemaining()) {
          return -1;
        }
        int n = Math.min(step, Math.min(dst.remaining(), source.remaining()));
        dst.put(source.slice(source.position(), n));
        source.position(source.position() + n);
        return n;
      }

      @Override
      public boolean isOpen() {
        return true;
      }

      @Override
      public void close() {}
    };
  }

  @Test
  void requestsAndPayloadsOfAnySizeAreReadWhole() throws Exception {
    byte[] large = pattern(200_000, 3);
    byte[] small = pattern(10, 4);
    ByteBuffer stream = ByteBuffer.allocate(8 + large.length + 4 + small.length + 3);
    stream.putLong(42).put(large).putInt(7).put(small).put(new byte[] {1, 2, 3});
    RequestInput in = new RequestInput(trickling(stream.array(), 7));

    assertThat(in.require(8)).isTrue();
    assertThat(in.buffered().getLong()).isEqualTo(42);
    ByteBuffer payload = ByteBuffer.allocateDirect(large.length);
    in.readFully(payload);
    byte[] got = new byte[large.length];
    payload.flip().get(got);
    assertThat(got).isEqualTo(large);

    assertThat(in.require(4)).isTrue();
    assertThat(in.buffered().getInt()).isEqualTo(7);
    ByteBuffer little = ByteBuffer.allocate(small.length);
    in.readFully(little);
    assertThat(little.array()).isEqualTo(small);

    // Three bytes left: a header cut short, and then a payload cut short.
    assertThatThrownBy(() -> in.require(4)).isInstanceOf(EOFException.class);
    RequestInput cut = new RequestInput(trickling(new byte[] {1, 2, 3}, 2));
    assertThatThrownBy(() -> cut.readFully(ByteBuffer.allocate(4)))
        .isInstanceOf(EOFException.class)
        .hasMessageContaining("payload");
    RequestInput ended = new RequestInput(trickling(new byte[0], 1));
    assertThat(ended.require(28)).as("ended at a request boundary").isFalse();
  }

  @Test
  void payloadBuffersComeInPowerOfTwoSizesAndAreReusedUpToTheirBound() {
    PayloadBuffers buffers = new PayloadBuffers(32 << 20, 8192);
    ByteBuffer one = buffers.acquire(1);
    assertThat(one.isDirect()).isTrue();
    assertThat(one.capacity()).isEqualTo(4096);
    assertThat(one.limit()).isEqualTo(1);
    ByteBuffer page = buffers.acquire(4097);
    assertThat(page.capacity()).isEqualTo(8192);
    assertThat(buffers.acquire(32 << 20).capacity()).isEqualTo(32 << 20);
    assertThat(buffers.acquire(0).limit()).isZero();

    buffers.release(page);
    ByteBuffer again = buffers.acquire(5000);
    assertThat(again).as("the same buffer, reused").isSameAs(page);
    assertThat(again.position()).isZero();
    assertThat(again.limit()).isEqualTo(5000);

    ByteBuffer other = buffers.acquire(8192);
    buffers.release(again);
    buffers.release(other);
    assertThat(buffers.retainedBytes()).as("at most 8 KiB kept").isEqualTo(8192);
    buffers.release(one);
    assertThat(buffers.retainedBytes()).isEqualTo(8192);
    assertThat(buffers.acquire(8192)).as("the one kept").isSameAs(again);
    assertThat(buffers.acquire(8192)).as("a new one").isNotSameAs(again).isNotSameAs(other);
  }
}
