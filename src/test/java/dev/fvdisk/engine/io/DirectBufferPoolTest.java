package dev.fvdisk.engine.io;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;

class DirectBufferPoolTest {

  @Test
  void buffersAreDirectPageAlignedAndExactlyTheirSize() {
    DirectBufferPool pool = new DirectBufferPool(1 << 20, 2);
    ByteBuffer buffer = pool.acquire();
    assertThat(buffer.isDirect()).isTrue();
    assertThat(buffer.alignmentOffset(0, 4096)).isZero();
    assertThat(buffer.capacity()).isEqualTo(1 << 20);
    assertThat(buffer.position()).isZero();
    assertThat(buffer.limit()).isEqualTo(1 << 20);
  }

  @Test
  void buffersSmallerThanAPageOrNotWholePagesAreExactToo() {
    for (int bytes : new int[] {1, 512, 4095, 4097, 65536 + 512}) {
      ByteBuffer buffer = new DirectBufferPool(bytes, 0).acquire();
      assertThat(buffer.capacity()).as("%d bytes", bytes).isEqualTo(bytes);
      assertThat(buffer.alignmentOffset(0, 4096)).isZero();
    }
  }

  @Test
  void aReleasedBufferIsReusedClearedAndOnlyUpToTheRetainedCount() {
    DirectBufferPool pool = new DirectBufferPool(8192, 1);
    ByteBuffer first = pool.acquire();
    ByteBuffer second = pool.acquire();
    first.position(100).limit(200);
    pool.release(first);
    pool.release(second); // over the retained count: dropped
    ByteBuffer again = pool.acquire();
    assertThat(again).isSameAs(first);
    assertThat(again.position()).isZero();
    assertThat(again.limit()).isEqualTo(8192);
    assertThat(pool.acquire()).isNotSameAs(second).isNotSameAs(first);
  }

  @Test
  void sizesMustMakeSense() {
    assertThatThrownBy(() -> new DirectBufferPool(0, 1))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("bufferBytes must be positive");
    assertThatThrownBy(() -> new DirectBufferPool(4096, -1))
        .isInstanceOf(IllegalArgumentException.class);
  }
}
