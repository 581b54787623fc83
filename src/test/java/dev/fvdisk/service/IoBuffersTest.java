package dev.fvdisk.service;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class IoBuffersTest {

  @Test
  void aBufferIsLimitedToTheRequestButNeverEmpty() {
    IoBuffers buffers = new IoBuffers(1 << 20, 2, 8);
    ByteBuffer small = buffers.acquire(4096);
    assertThat(small.isDirect()).isTrue();
    assertThat(small.capacity()).isEqualTo(1 << 20);
    assertThat(small.position()).isZero();
    assertThat(small.limit()).isEqualTo(4096);
    assertThat(buffers.acquire(5L << 30).limit()).isEqualTo(1 << 20);
    assertThat(buffers.acquire(0).limit()).isEqualTo(1);
  }

  @Test
  void aRequestWaitsWhileEveryBufferIsInUseAndGetsTheOneReleased() throws Exception {
    IoBuffers buffers = new IoBuffers(8192, 1, 1);
    ByteBuffer held = buffers.acquire(8192);
    CompletableFuture<ByteBuffer> waiting =
        CompletableFuture.supplyAsync(() -> buffers.acquire(512));
    // Not a timing claim: the second request cannot finish while the only buffer is out, and a
    // wrong bound would let it finish at once.
    Thread.sleep(200);
    assertThat(waiting).isNotDone();
    buffers.release(held);
    assertThat(waiting.get(10, TimeUnit.SECONDS)).isSameAs(held);
  }
}
