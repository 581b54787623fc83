package dev.fvdisk.engine.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The behaviour every {@link Storage} must show, run once per implementation by a small subclass.
 *
 * <p>The engine relies on exactly these properties: reads past the end fail instead of returning
 * short, holes and grown space read as zeros, a shrink really drops the cut bytes (so a later grow
 * exposes zeros, not the old content), and positional writes from many threads to different ranges
 * never disturb each other.
 */
abstract class StorageContractTest {

  private final List<Storage> opened = new ArrayList<>();

  /** A new, empty storage. */
  protected abstract Storage createEmpty() throws IOException;

  /** Closes {@code storage} and opens the same bytes again. */
  protected abstract Storage closeAndReopen(Storage storage) throws IOException;

  private Storage newStorage() throws IOException {
    Storage storage = createEmpty();
    opened.add(storage);
    return storage;
  }

  @AfterEach
  void closeEverything() throws IOException {
    for (Storage storage : opened) {
      storage.close();
    }
  }

  private static byte[] pattern(int lengthBytes, int seed) {
    byte[] bytes = new byte[lengthBytes];
    new Random(seed).nextBytes(bytes);
    return bytes;
  }

  private static byte[] read(Storage storage, long offsetBytes, int lengthBytes)
      throws IOException {
    ByteBuffer buf = ByteBuffer.allocate(lengthBytes);
    storage.read(buf, offsetBytes);
    assertFalse(buf.hasRemaining(), "read must fill the whole buffer");
    return buf.array();
  }

  private static void write(Storage storage, long offsetBytes, byte[] bytes) throws IOException {
    ByteBuffer src = ByteBuffer.wrap(bytes);
    storage.write(src, offsetBytes);
    assertFalse(src.hasRemaining(), "write must consume the whole buffer");
  }

  @Test
  void new_storage_is_empty_and_any_read_hits_the_end() throws IOException {
    Storage storage = newStorage();
    assertEquals(0, storage.sizeBytes());
    assertThrows(EOFException.class, () -> storage.read(ByteBuffer.allocate(1), 0));
  }

  @Test
  void written_bytes_read_back_and_size_covers_the_write() throws IOException {
    Storage storage = newStorage();
    byte[] data = pattern(10_000, 1);
    write(storage, 123, data);
    assertEquals(10_123, storage.sizeBytes());
    assertArrayEquals(data, read(storage, 123, data.length));
  }

  @Test
  void write_past_the_end_leaves_a_hole_that_reads_as_zeros() throws IOException {
    Storage storage = newStorage();
    write(storage, 0, pattern(100, 2));
    write(storage, 300_000, pattern(50, 3));
    assertEquals(300_050, storage.sizeBytes());
    assertArrayEquals(new byte[300_000 - 100], read(storage, 100, 300_000 - 100));
    assertArrayEquals(pattern(50, 3), read(storage, 300_000, 50));
  }

  @Test
  void read_that_straddles_the_end_fails_instead_of_returning_short() throws IOException {
    Storage storage = newStorage();
    write(storage, 0, pattern(1000, 4));
    assertThrows(EOFException.class, () -> storage.read(ByteBuffer.allocate(2), 999));
    assertThrows(EOFException.class, () -> storage.read(ByteBuffer.allocate(1), 1000));
    // An empty read exactly at the end asks for nothing and succeeds.
    storage.read(ByteBuffer.allocate(0), 1000);
    assertArrayEquals(pattern(1000, 4), read(storage, 0, 1000));
  }

  @Test
  void read_and_write_honour_buffer_position_and_limit() throws IOException {
    Storage storage = newStorage();
    byte[] data = pattern(64, 5);
    ByteBuffer src = ByteBuffer.wrap(new byte[100]);
    src.position(10).limit(74);
    src.duplicate().put(data);
    storage.write(src, 1000);
    assertEquals(74, src.position(), "write consumes exactly position..limit");
    assertEquals(1064, storage.sizeBytes());

    ByteBuffer dst = ByteBuffer.allocate(100);
    dst.position(20).limit(84);
    storage.read(dst, 1000);
    assertEquals(84, dst.position(), "read fills exactly position..limit");
    byte[] got = new byte[64];
    dst.position(20);
    dst.get(got);
    assertArrayEquals(data, got);
    assertEquals(0, dst.get(0), "bytes before position are untouched");
  }

  @Test
  void direct_buffers_work_like_heap_buffers() throws IOException {
    Storage storage = newStorage();
    byte[] data = pattern(5000, 6);
    ByteBuffer src = ByteBuffer.allocateDirect(data.length);
    src.put(data).flip();
    storage.write(src, 70_000);
    ByteBuffer dst = ByteBuffer.allocateDirect(data.length);
    storage.read(dst, 70_000);
    dst.flip();
    byte[] got = new byte[data.length];
    dst.get(got);
    assertArrayEquals(data, got);
  }

  @Test
  void reads_and_writes_crossing_large_internal_boundaries_are_exact() throws IOException {
    Storage storage = newStorage();
    // 200 KiB at an odd offset crosses any page or block size an implementation might use.
    byte[] data = pattern(200 * 1024, 7);
    write(storage, 65_531, data);
    assertArrayEquals(data, read(storage, 65_531, data.length));
    byte[] middle = new byte[70_000];
    System.arraycopy(data, 1000, middle, 0, middle.length);
    assertArrayEquals(middle, read(storage, 65_531 + 1000, middle.length));
  }

  @Test
  void offsets_beyond_two_gibibytes_are_not_truncated() throws IOException {
    Storage storage = newStorage();
    long offsetBytes = (3L << 30) + 17;
    write(storage, offsetBytes, pattern(600, 8));
    assertEquals(offsetBytes + 600, storage.sizeBytes());
    assertArrayEquals(pattern(600, 8), read(storage, offsetBytes, 600));
    assertArrayEquals(new byte[600], read(storage, offsetBytes - (1L << 31), 600));
  }

  @Test
  void growing_resize_adds_zeros_and_keeps_content() throws IOException {
    Storage storage = newStorage();
    write(storage, 0, pattern(3000, 9));
    storage.resize(1 << 20);
    assertEquals(1 << 20, storage.sizeBytes());
    assertArrayEquals(pattern(3000, 9), read(storage, 0, 3000));
    assertArrayEquals(new byte[(1 << 20) - 3000], read(storage, 3000, (1 << 20) - 3000));
  }

  @Test
  void shrinking_resize_drops_the_tail_and_a_later_grow_reads_zeros_there() throws IOException {
    Storage storage = newStorage();
    byte[] data = pattern(200_000, 10);
    write(storage, 0, data);
    // Cut inside a sector and inside any page an implementation might keep.
    storage.resize(70_001);
    assertEquals(70_001, storage.sizeBytes());
    assertThrows(EOFException.class, () -> storage.read(ByteBuffer.allocate(1), 70_001));
    storage.resize(200_000);
    byte[] head = new byte[70_001];
    System.arraycopy(data, 0, head, 0, head.length);
    assertArrayEquals(head, read(storage, 0, head.length));
    assertArrayEquals(new byte[200_000 - 70_001], read(storage, 70_001, 200_000 - 70_001));
  }

  @Test
  void shrinking_to_a_page_boundary_then_writing_past_it_exposes_no_old_bytes() throws IOException {
    Storage storage = newStorage();
    write(storage, 0, pattern(4 * 65_536, 11));
    storage.resize(65_536);
    write(storage, 3 * 65_536, pattern(10, 12));
    assertArrayEquals(new byte[2 * 65_536], read(storage, 65_536, 2 * 65_536));
  }

  @Test
  void resize_to_zero_empties_the_storage() throws IOException {
    Storage storage = newStorage();
    write(storage, 0, pattern(10_000, 13));
    storage.resize(0);
    assertEquals(0, storage.sizeBytes());
    storage.resize(10_000);
    assertArrayEquals(new byte[10_000], read(storage, 0, 10_000));
  }

  @Test
  void force_keeps_content_and_size() throws IOException {
    Storage storage = newStorage();
    write(storage, 10, pattern(100, 14));
    storage.resize(8192);
    storage.force();
    assertEquals(8192, storage.sizeBytes());
    assertArrayEquals(pattern(100, 14), read(storage, 10, 100));
  }

  @Test
  void content_and_size_survive_close_and_reopen() throws IOException {
    Storage storage = newStorage();
    write(storage, 4096, pattern(777, 15));
    storage.resize(20_000);
    storage.force();
    Storage reopened = closeAndReopen(storage);
    opened.add(reopened);
    assertEquals(20_000, reopened.sizeBytes());
    assertArrayEquals(pattern(777, 15), read(reopened, 4096, 777));
    assertArrayEquals(new byte[4096], read(reopened, 0, 4096));
  }

  @Test
  void calls_after_close_fail_with_an_io_exception() throws IOException {
    Storage storage = createEmpty();
    write(storage, 0, pattern(10, 16));
    storage.close();
    assertThrows(IOException.class, () -> storage.read(ByteBuffer.allocate(1), 0));
    assertThrows(IOException.class, () -> storage.write(ByteBuffer.allocate(1), 0));
  }

  @Test
  void description_names_the_storage() throws IOException {
    Storage storage = newStorage();
    assertFalse(storage.description().isBlank());
  }

  @Test
  void concurrent_positional_writes_to_different_ranges_all_land() throws Exception {
    Storage storage = newStorage();
    int threads = 8;
    int writesPerThread = 200;
    int sliceBytes = 1536;
    // Thread t owns every slice whose index is t modulo the thread count, so neighbouring
    // slices, which share pages and blocks, are written by different threads at the same time.
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      List<Future<Void>> futures = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        int thread = t;
        Callable<Void> task =
            () -> {
              for (int i = 0; i < writesPerThread; i++) {
                int slice = i * threads + thread;
                write(storage, (long) slice * sliceBytes + 3, pattern(sliceBytes, slice));
                if (i % 16 == 1) {
                  // This thread's previous slice, which its neighbours' writes surround: it must
                  // read back complete, never with a neighbour's bytes.
                  int earlier = slice - threads;
                  assertArrayEquals(
                      pattern(sliceBytes, earlier),
                      read(storage, (long) earlier * sliceBytes + 3, sliceBytes));
                }
              }
              return null;
            };
        futures.add(pool.submit(task));
      }
      for (Future<Void> future : futures) {
        future.get(60, TimeUnit.SECONDS);
      }
    } finally {
      pool.shutdownNow();
    }
    int slices = threads * writesPerThread;
    assertEquals((long) slices * sliceBytes + 3, storage.sizeBytes());
    for (int slice = 0; slice < slices; slice++) {
      assertArrayEquals(
          pattern(sliceBytes, slice),
          read(storage, (long) slice * sliceBytes + 3, sliceBytes),
          "slice " + slice);
    }
  }
}
