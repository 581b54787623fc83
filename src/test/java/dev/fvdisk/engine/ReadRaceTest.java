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
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * Reads racing a close or a grow of the same image must end in the right bytes or a clean {@link
 * ImageClosedException}, never in the closed channel's own exception or in stale bytes, and a close
 * must get through steady reads. The image's lifecycle lock keeps them apart; with a {@link
 * java.util.concurrent.locks.StampedLock}, whose new readers pass a waiting writer, the close in
 * {@link #reads_racing_close_return_the_data_or_image_closed} never got its turn.
 */
class ReadRaceTest {

  @RegisterExtension static final CheckOnClose CHECKED = new CheckOnClose();

  private static final int CHUNK = 64 * 1024;
  private static final int WRITTEN_CHUNKS = 8;
  private static final int BLOCK = 16 * 1024;
  private static final int PAGE = 4096;
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
      Readers readers = new Readers(image, 1);
      readers.awaitGoodReads(20);
      closeWithin10s(image, readers, "close never got past the reads, round " + round);
      readers.awaitEnd("a reader kept reading a closed image");
      assertEquals(List.of(), List.copyOf(readers.wrong), "round " + round);
    }
  }

  @Test
  void reads_racing_grow_see_the_written_bytes() throws Exception {
    try (Image image = Image.create(FileStorage.createNew(dir.resolve("grow.fvd")), options())) {
      writePattern(image);
      Readers readers = new Readers(image, 1);
      long size = image.sizeBytes();
      for (int grow = 0; grow < 200; grow++) {
        size += CHUNK;
        image.grow(size);
      }
      assertTrue(readers.allAlive(), "a reader stopped during the grows: " + readers.wrong);
      readers.stop.set(true);
      readers.awaitEnd("a reader did not stop");
      assertEquals(List.of(), List.copyOf(readers.wrong));
      assertTrue(readers.goodReads.get() > 0, "no read completed");
      assertArrayEquals(new byte[CHUNK], read(image, size - CHUNK, CHUNK));
    }
  }

  @Test
  void copy_on_read_racing_close_neither_hangs_nor_returns_wrong_bytes() throws Exception {
    CheckOnClose.Checked baseStorage = CHECKED.memory("base");
    try (Image base = Image.create(baseStorage, options())) {
      writePattern(base);
    }
    Image.setReadOnly(baseStorage.reopen(), true);
    for (int round = 0; round < 5; round++) {
      // Slow base reads, so that copies from the base are in flight when the close comes.
      SlowCountingStorage slowBase = new SlowCountingStorage(baseStorage.reopen());
      try (Image base = Image.open(slowBase, false)) {
        Image clone =
            Image.create(
                CHECKED.memory("clone-" + round),
                ImageOptions.builder((long) WRITTEN_CHUNKS * CHUNK)
                    .chunkSizeBytes(CHUNK)
                    .blockSizeBytes(BLOCK)
                    .copyOnRead(true)
                    .build(),
                base,
                "base");
        slowBase.setReadDelayMillis(1);
        // Whole blocks, so that every read from the base is copied in.
        Readers readers = new Readers(clone, BLOCK / PAGE);
        readers.awaitGoodReads(READERS);
        closeWithin10s(clone, readers, "close hung behind a copy-on-read, round " + round);
        readers.awaitEnd("a reader kept reading a closed clone");
        assertEquals(List.of(), List.copyOf(readers.wrong), "round " + round);
        assertTrue(clone.prefetchStatus().copiedBytes() > 0, "no block was copied on read");
      }
    }
  }

  /** Closes on another thread, so that a close that never gets the lock fails the test. */
  private static void closeWithin10s(Image image, Readers readers, String failure)
      throws InterruptedException {
    Thread closer =
        daemon(
            () -> {
              try {
                image.close();
              } catch (Throwable t) {
                readers.wrong.add(t);
              }
            });
    closer.start();
    closer.join(10_000);
    assertTrue(!closer.isAlive(), failure);
  }

  /**
   * {@value #READERS} threads that read and check pages until the image closes under them or {@link
   * #stop} is set; anything else they meet goes to {@link #wrong}.
   */
  private static final class Readers {
    final AtomicLong goodReads = new AtomicLong();
    final ConcurrentLinkedQueue<Throwable> wrong = new ConcurrentLinkedQueue<>();
    final AtomicBoolean stop = new AtomicBoolean();
    private final List<Thread> threads = new ArrayList<>();

    Readers(Image image, int pagesPerRead) {
      for (int r = 0; r < READERS; r++) {
        threads.add(
            daemon(
                () -> {
                  while (!stop.get()) {
                    try {
                      readAndVerify(image, pagesPerRead);
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
      threads.forEach(Thread::start);
    }

    void awaitGoodReads(long count) {
      while (goodReads.get() < count && wrong.isEmpty()) {
        Thread.onSpinWait();
      }
    }

    boolean allAlive() {
      return threads.stream().allMatch(Thread::isAlive);
    }

    void awaitEnd(String failure) throws InterruptedException {
      for (Thread thread : threads) {
        thread.join(10_000);
        assertTrue(!thread.isAlive(), failure);
      }
    }
  }

  private static Thread daemon(Runnable body) {
    Thread thread = new Thread(body);
    thread.setDaemon(true);
    return thread;
  }

  private static ImageOptions options() {
    return ImageOptions.builder((long) WRITTEN_CHUNKS * CHUNK)
        .chunkSizeBytes(CHUNK)
        .maxSizeBytes(1L << 30)
        .build();
  }

  /** Every 4 KiB page of the written chunks holds its own page number. */
  private static void writePattern(Image image) throws Exception {
    ByteBuffer page = ByteBuffer.allocate(PAGE);
    for (int p = 0; p < WRITTEN_CHUNKS * CHUNK / PAGE; p++) {
      page.clear();
      while (page.hasRemaining()) {
        page.putInt(p);
      }
      image.write((long) p * PAGE, page.flip());
    }
    image.flush();
  }

  /** Reads {@code pages} pages at a random multiple of their size and checks every page. */
  private static void readAndVerify(Image image, int pages) throws Exception {
    int first = ThreadLocalRandom.current().nextInt(WRITTEN_CHUNKS * CHUNK / PAGE / pages) * pages;
    ByteBuffer data = ByteBuffer.allocateDirect(pages * PAGE);
    image.read((long) first * PAGE, data);
    if (data.hasRemaining()) {
      throw new AssertionError("read at page " + first + " left " + data.remaining() + " bytes");
    }
    data.flip();
    for (int p = first; data.hasRemaining(); p++) {
      for (int i = 0; i < PAGE / Integer.BYTES; i++) {
        int got = data.getInt();
        if (got != p) {
          throw new AssertionError("page " + p + " held " + got);
        }
      }
    }
  }

  private static byte[] read(Image image, long offset, int length) throws Exception {
    ByteBuffer buffer = ByteBuffer.allocate(length);
    image.read(offset, buffer);
    return buffer.array();
  }
}
