package dev.fvdisk.engine.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What {@link FileStorage} promises beyond the storage contract. */
class FileStorageTest {

  @TempDir Path directory;

  private static long directBytes() {
    for (BufferPoolMXBean pool : ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class)) {
      if (pool.getName().equals("direct")) {
        return pool.getMemoryUsed();
      }
    }
    throw new IllegalStateException("no direct buffer pool");
  }

  /**
   * A whole chunk table is read and written as one heap buffer (4 MiB per TiB). The channel would
   * copy it through a temporary direct buffer of the same size and keep that cached in the thread
   * for good, so FileStorage hands it over in pieces.
   */
  @Test
  void large_heap_buffers_leave_at_most_one_piece_of_native_memory_in_the_thread()
      throws Exception {
    int length = 16 << 20;
    byte[] data = new byte[length + 777];
    new Random(1).nextBytes(data);
    AtomicLong grown = new AtomicLong();
    AtomicReference<byte[]> readBack = new AtomicReference<>();
    AtomicReference<Throwable> failure = new AtomicReference<>();
    // A new thread starts with an empty cache of temporary direct buffers.
    Thread thread =
        new Thread(
            () -> {
              try (FileStorage storage = FileStorage.createNew(directory.resolve("big.img"))) {
                long before = directBytes();
                ByteBuffer src = ByteBuffer.wrap(data, 5, length);
                storage.write(src, 4096 + 3);
                assertEquals(length + 5, src.position());
                assertEquals(length + 5, src.limit());
                ByteBuffer dst = ByteBuffer.allocate(data.length);
                dst.position(5).limit(length + 5);
                storage.read(dst, 4096 + 3);
                assertEquals(length + 5, dst.position());
                assertEquals(length + 5, dst.limit());
                grown.set(directBytes() - before);
                readBack.set(dst.array());
              } catch (Throwable e) {
                failure.set(e);
              }
            });
    thread.start();
    thread.join();
    if (failure.get() != null) {
      throw new AssertionError(failure.get());
    }
    byte[] expected = data.clone();
    Arrays.fill(expected, 0, 5, (byte) 0);
    Arrays.fill(expected, length + 5, expected.length, (byte) 0);
    assertArrayEquals(expected, readBack.get());
    assertTrue(
        grown.get() <= 2L * FileStorage.HEAP_SLICE_BYTES,
        "direct memory grew by " + grown.get() + " bytes for a " + length + "-byte heap buffer");
  }
}
