package dev.fvdisk.service;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;

class IoBuffersTest {

  @Test
  void buffersAreDirectPageAlignedAndLimitedToTheRequest() {
    IoBuffers buffers = new IoBuffers(1 << 20, 2);
    ByteBuffer small = buffers.acquire(4096);
    assertThat(small.isDirect()).isTrue();
    assertThat(small.alignmentOffset(0, 4096)).isZero();
    assertThat(small.capacity()).isEqualTo(1 << 20);
    assertThat(small.position()).isZero();
    assertThat(small.limit()).isEqualTo(4096);
    assertThat(buffers.acquire(5L << 30).limit()).isEqualTo(1 << 20);
    assertThat(buffers.acquire(0).limit()).isEqualTo(1);
  }

  @Test
  void aReleasedBufferIsReusedClearedAndOnlyUpToTheRetainedCount() {
    IoBuffers buffers = new IoBuffers(8192, 1);
    ByteBuffer first = buffers.acquire(8192);
    ByteBuffer second = buffers.acquire(8192);
    first.position(100);
    buffers.release(first);
    buffers.release(second); // over the retained count: dropped
    ByteBuffer again = buffers.acquire(512);
    assertThat(again).isSameAs(first);
    assertThat(again.position()).isZero();
    assertThat(again.limit()).isEqualTo(512);
    assertThat(buffers.acquire(512)).isNotSameAs(second).isNotSameAs(first);
  }
}
