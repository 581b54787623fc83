package dev.fvdisk.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.fvdisk.engine.io.FileStorage;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Reads of a plain image skip the lifecycle lock and check afterwards whether a close or grow
 * overlapped them. These races must still end in the right bytes or a clean {@link
 * ImageClosedException}, never in the closed channel's own exception or in stale bytes.
 */
class ReadRaceTest {

  private static final int CHUNK = 64 * 1024;
  private static final int WRITTEN_CHUNKS = 8;
  private static final int READERS = 4;

  @TempDir Path dir;

  @Test
  void reads_racing_close_return_the_data_or_image_closed() throws Exception {
    for (int round = 0; round < 20; round++) {
      Path file = dir.resolve("close-" + round + ".fvd");
      // Slow reads, so that reads are in flight on the file when it closes.
      SlowCountingStorage storage = new SlowCountingStorage(FileStorage.createNew(file));
      Image image = Image.create(storage, options());
      writePattern(image);
      storage.setReadDelayMillis(1);
      AtomicLong goodReads = new AtomicLong();
      ConcurrentLinkedQueue<Throwable> wrong = new ConcurrentLinkedQueue<>();
      List<Thread> readers = new ArrayList<>();
      for (int r = 0; r < READERS; r++) {
        readers.add(
            new Thread(
                () -> {
                  while (true) {
                    try {
                      readAndVerify(image);
                      goodReads.incrementAndGet();
                    } catch (ImageClosedException closed) {
                      return;
                    } catch (Throwable t) {
                      wrong.add(t);
                      return;
                    }
                  }
                }));
      }
      readers.forEach(Thread::start);
      while (goodReads.get() < 20) {
        Thread.onSpinWait();
      }
      image.close();
      for (Thread reader : readers) {
        reader.join(10_000);
        assertTrue(!reader.isAlive(), "a reader kept reading a closed image");
      }
      assertEquals(List.of(), List.copyOf(wrong), "round " + round);
    }
  }

  @Test
  void reads_racing_grow_see_the_written_bytes() throws Exception {
    try (Image image = Image.create(FileStorage.createNew(dir.resolve("grow.fvd")), options())) {
      writePattern(image);
      AtomicBoolean stop = new AtomicBoolean();
      AtomicLong goodReads = new AtomicLong();
      ConcurrentLinkedQueue<Throwable> wrong = new ConcurrentLinkedQueue<>();
      List<Thread> readers = new ArrayList<>();
      for (int r = 0; r < READERS; r++) {
        readers.add(
            new Thread(
                () -> {
                  while (!stop.get()) {
                    try {
                      readAndVerify(image);
                      goodReads.incrementAndGet();
                    } catch (Throwable t) {
                      wrong.add(t);
                      return;
                    }
                  }
                }));
      }
      readers.forEach(Thread::start);
      long size = image.sizeBytes();
      for (int grow = 0; grow < 200; grow++) {
        size += CHUNK;
        image.grow(size);
      }
      stop.set(true);
      for (Thread reader : readers) {
        reader.join(10_000);
      }
      assertEquals(List.of(), List.copyOf(wrong));
      assertTrue(goodReads.get() > 0, "no read completed");
      assertArrayEquals(new byte[CHUNK], read(image, size - CHUNK, CHUNK));
    }
  }

  private static ImageOptions options() {
    return ImageOptions.builder((long) WRITTEN_CHUNKS * CHUNK)
        .chunkSizeBytes(CHUNK)
        .maxSizeBytes(1L << 30)
        .build();
  }

  /** Every 4 KiB page of the written chunks holds its own page number. */
  private static void writePattern(Image image) throws Exception {
    ByteBuffer page = ByteBuffer.allocate(4096);
    for (int p = 0; p < WRITTEN_CHUNKS * CHUNK / 4096; p++) {
      page.clear();
      while (page.hasRemaining()) {
        page.putInt(p);
      }
      image.write((long) p * 4096, page.flip());
    }
    image.flush();
  }

  private static void readAndVerify(Image image) throws Exception {
    int p = ThreadLocalRandom.current().nextInt(WRITTEN_CHUNKS * CHUNK / 4096);
    ByteBuffer page = ByteBuffer.allocateDirect(4096);
    image.read((long) p * 4096, page);
    if (page.position() != 4096) {
      throw new AssertionError("read of page " + p + " returned " + page.position() + " bytes");
    }
    page.flip();
    while (page.hasRemaining()) {
      int got = page.getInt();
      if (got != p) {
        throw new AssertionError("page " + p + " held " + got);
      }
    }
  }

  private static byte[] read(Image image, long offset, int length) throws Exception {
    ByteBuffer buffer = ByteBuffer.allocate(length);
    image.read(offset, buffer);
    return buffer.array();
  }
}
