package dev.fvdisk.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.fvdisk.engine.CheckReport.Status;
import dev.fvdisk.engine.CorruptImageException.Kind;
import dev.fvdisk.engine.io.MemoryStorage;
import dev.fvdisk.engine.io.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.UUID;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Damaged and foreign files: truncation at many lengths, flipped bits in each header copy, in the
 * table copies and in journal records, wrong magic, unsupported versions, and header values that
 * break the format's rules behind a valid checksum.
 *
 * <p>Each must either open with its flushed data intact (when the format has the redundancy to
 * survive it: one header copy, the inactive table copy, a journal sector that is skipped) or fail
 * with a {@link CorruptImageException} of the right {@link Kind} whose message names the file;
 * never with another exception, a hang or an out-of-memory error. The random damage test runs
 * {@code -Dfvdisk.corrupt.seeds=N} seeds (default 300).
 *
 * <p>The test builds its damage from the documented layouts (header and journal record tables in
 * {@link Header} and {@link Journal}), computing checksums itself, so a change to the layout that
 * the documentation does not follow shows up here.
 */
class CorruptImageTest {

  private static final int CHUNK_BYTES = 4096;
  private static final long SIZE_BYTES = 16L * CHUNK_BYTES;
  private static final Duration TIME_LIMIT = Duration.ofSeconds(30);
  private static final int RANDOM_SEEDS = Integer.getInteger("fvdisk.corrupt.seeds", 300);

  // Header field offsets, from the layout table in Header's documentation.
  private static final int MAGIC = 0;
  private static final int VERSION = 8;
  private static final int LENGTH = 12;
  private static final int GENERATION = 16;
  private static final int SIZE = 40;
  private static final int MAX_SIZE = 48;
  private static final int CHUNK_SIZE = 56;
  private static final int INCOMPATIBLE = 64;
  private static final int ACTIVE_TABLE = 68;
  private static final int TABLE0 = 72;
  private static final int TABLE1 = 80;
  private static final int TABLE_REGION = 88;
  private static final int JOURNAL_OFFSET = 104;
  private static final int JOURNAL_SIZE = 112;
  private static final int DATA_OFFSET = 120;
  private static final int GROWTH_UNIT = 128;
  private static final int CHECKSUM = Header.LENGTH_BYTES;

  @TempDir Path dir;

  /** Offset and length of each write; the first three are flushed together, then the fourth. */
  private static final long[][] WRITES = {
    {0, 700}, {3L * CHUNK_BYTES - 100, 300}, {7L * CHUNK_BYTES + 5, 2000}, {10L * CHUNK_BYTES, 512}
  };

  /** The content the test image holds: a few chunks written in two flushes. */
  private static final byte[] CONTENT = content();

  private static byte[] content() {
    byte[] content = new byte[(int) SIZE_BYTES];
    SplittableRandom random = new SplittableRandom(42);
    for (long[] write : WRITES) {
      for (int i = 0; i < write[1]; i++) {
        content[(int) write[0] + i] = (byte) (1 + random.nextInt(255));
      }
    }
    return content;
  }

  /** Chunks the writes map, in allocation order: slot i holds MAPPED_CHUNKS[i]. */
  private static final int[] MAPPED_CHUNKS = {0, 2, 3, 7, 10};

  /**
   * The bytes of a small image holding {@link #CONTENT}. With {@code closed} it was closed cleanly;
   * otherwise the process "died" after the flushes, so the mappings live only in the journal (two
   * records: chunks 0, 2, 3, 7, then chunk 10).
   */
  private static byte[] imageBytes(boolean closed) throws IOException {
    MemoryStorage storage = new MemoryStorage("builder");
    Image image =
        Image.create(
            storage,
            ImageOptions.builder(SIZE_BYTES)
                .chunkSizeBytes(CHUNK_BYTES)
                .maxSizeBytes(2 * SIZE_BYTES)
                .journalSizeBytes(4096)
                .growthUnitBytes(8L * CHUNK_BYTES)
                .build());
    for (int i = 0; i < WRITES.length; i++) {
      long offset = WRITES[i][0];
      int length = (int) WRITES[i][1];
      image.write(offset, ByteBuffer.wrap(CONTENT, (int) offset, length));
      if (i >= 2) {
        image.flush();
      }
    }
    if (closed) {
      image.close();
    }
    return bytesOf(storage.reopen());
  }

  private static byte[] bytesOf(Storage storage) throws IOException {
    ByteBuffer buf = ByteBuffer.allocate((int) storage.sizeBytes());
    storage.read(buf, 0);
    return buf.array();
  }

  private static MemoryStorage storageOf(byte[] bytes, String name) throws IOException {
    MemoryStorage storage = new MemoryStorage(name);
    storage.write(ByteBuffer.wrap(bytes), 0);
    return storage;
  }

  private Path fileOf(byte[] bytes, String name) throws IOException {
    Path file = dir.resolve(name);
    Files.write(file, bytes);
    return file;
  }

  private static Header headerOf(byte[] bytes) throws IOException {
    return Header.read(storageOf(bytes, "header-reader"));
  }

  // --- assertions -------------------------------------------------------------------------------

  /** Opening (read-only and writable) and checking fail with {@code kind}, naming the file. */
  private static void assertRefused(Path file, Kind kind, String what) {
    assertTimeoutPreemptively(
        TIME_LIMIT,
        () -> {
          for (boolean writable : new boolean[] {false, true}) {
            CorruptImageException e =
                assertThrows(
                    CorruptImageException.class,
                    () -> Images.open(file, writable).close(),
                    what + ": opened although damaged");
            assertEquals(kind, e.kind(), what + ": " + e.getMessage());
            assertTrue(
                e.getMessage().contains(file.toString()),
                what + ": message does not name the file: " + e.getMessage());
          }
          CheckReport report = Images.check(file);
          assertEquals(Status.CORRUPT, report.status(), what);
          assertTrue(
              report.problems().stream().anyMatch(p -> p.contains(file.toString())),
              what + ": check does not name the file: " + report.problems());
        },
        what + ": took too long");
  }

  /** The same for storage in memory: both opens fail with {@code kind}, naming the storage. */
  private static void assertRefused(byte[] bytes, Kind kind, String what) {
    assertTimeoutPreemptively(
        TIME_LIMIT,
        () -> {
          for (boolean writable : new boolean[] {false, true}) {
            String name = "damaged-" + what.replace(' ', '-');
            MemoryStorage storage = storageOf(bytes, name);
            CorruptImageException e =
                assertThrows(
                    CorruptImageException.class,
                    () -> Image.open(storage, writable).close(),
                    what + ": opened although damaged");
            assertEquals(kind, e.kind(), what + ": " + e.getMessage());
            assertTrue(
                e.getMessage().contains(name),
                what + ": message does not name the storage: " + e.getMessage());
            assertEquals(Status.CORRUPT, Images.check(storage).status(), what);
          }
        },
        what + ": took too long");
  }

  /** Opens read-only and writable, and each time reads back every flushed byte. */
  private static void assertOpensWithContent(byte[] bytes, String what) {
    assertTimeoutPreemptively(
        TIME_LIMIT,
        () -> {
          for (boolean writable : new boolean[] {false, true}) {
            MemoryStorage storage = storageOf(bytes, "survivor");
            try (Image image = Image.open(storage, writable)) {
              assertArrayEquals(CONTENT, readAll(image), what + ": content changed");
            } catch (CorruptImageException e) {
              fail(what + ": refused to open: " + e.getMessage(), e);
            }
            CheckReport report = Images.check(storage.reopen());
            assertEquals(Status.OK, report.status(), what + ": " + report.problems());
          }
        },
        what + ": took too long");
  }

  private static byte[] readAll(Image image) throws IOException {
    ByteBuffer buf = ByteBuffer.allocate((int) image.sizeBytes());
    image.read(0, buf);
    return buf.array();
  }

  // --- truncation -------------------------------------------------------------------------------

  @Test
  void truncated_files_are_refused_naming_the_file() throws IOException {
    for (boolean closed : new boolean[] {true, false}) {
      byte[] bytes = imageBytes(closed);
      Header header = headerOf(bytes);
      long data = header.dataOffsetBytes();
      long[][] cuts = {
        {0, 0},
        {7, 0},
        {100, 1},
        {4096, 1},
        {Header.REGION_BYTES - 1, 1},
        {Header.REGION_BYTES, 1},
        {header.tableOffset0() + 100, 1},
        {header.tableOffset1() + 100, 1},
        {header.journalOffsetBytes() + 100, 1},
        {header.journalOffsetBytes() + header.journalSizeBytes() - 1, 1},
        {data - 1, 1},
        // Inside the data area, cutting into mapped chunk slots.
        {data + CHUNK_BYTES / 2, 1},
        {data + 2L * CHUNK_BYTES + 1, 1},
        {data + (MAPPED_CHUNKS.length - 1L) * CHUNK_BYTES + 511, 1}
      };
      for (long[] cut : cuts) {
        String what = (closed ? "closed" : "crashed") + " image cut to " + cut[0] + " bytes";
        Path file = fileOf(Arrays.copyOf(bytes, (int) cut[0]), "cut-" + closed + "-" + cut[0]);
        assertRefused(file, cut[1] == 0 ? Kind.NOT_AN_IMAGE : Kind.CORRUPT, what);
      }
    }
  }

  @Test
  void cutting_only_unused_reserved_space_keeps_the_image_whole() throws IOException {
    for (boolean closed : new boolean[] {true, false}) {
      byte[] bytes = imageBytes(closed);
      long end = headerOf(bytes).dataOffsetBytes() + (long) MAPPED_CHUNKS.length * CHUNK_BYTES;
      assertTrue(bytes.length > end, "the image should have reserved space to cut");
      assertOpensWithContent(Arrays.copyOf(bytes, (int) end), "cut after the last mapped chunk");
    }
  }

  // --- foreign files ----------------------------------------------------------------------------

  @Test
  void files_that_are_not_images_are_reported_as_such() throws IOException {
    byte[] random = new byte[1 << 20];
    new SplittableRandom(7).nextBytes(random);
    byte[] text = "Lorem ipsum dolor sit amet.\n".repeat(1000).getBytes(StandardCharsets.UTF_8);
    assertRefused(fileOf(new byte[1 << 20], "zeros.img"), Kind.NOT_AN_IMAGE, "a file of zeros");
    assertRefused(fileOf(random, "random.img"), Kind.NOT_AN_IMAGE, "random bytes");
    assertRefused(fileOf(text, "long.txt"), Kind.NOT_AN_IMAGE, "a long text file");
    assertRefused(
        fileOf(Arrays.copyOf(text, 100), "short.txt"), Kind.NOT_AN_IMAGE, "a 100-byte text file");
    assertRefused(fileOf(new byte[] {1, 2, 3}, "tiny.bin"), Kind.NOT_AN_IMAGE, "a 3-byte file");
  }

  // --- header copies ----------------------------------------------------------------------------

  private static byte[] flipBit(byte[] bytes, long offsetBytes, int bit) {
    byte[] copy = bytes.clone();
    copy[(int) offsetBytes] ^= (byte) (1 << bit);
    return copy;
  }

  @Test
  void one_damaged_header_copy_still_opens_with_all_data() throws IOException {
    byte[] bytes = imageBytes(true);
    for (int slot = 0; slot < Header.SLOT_COUNT; slot++) {
      for (int b = 0; b < CHECKSUM + 4; b++) {
        long offset = (long) slot * Header.SLOT_BYTES + b;
        assertOpensWithContent(
            flipBit(bytes, offset, b % 8), "bit " + b % 8 + " of header byte " + offset);
      }
    }
  }

  @Test
  void both_header_copies_damaged_refuse_to_open_with_the_matching_kind() throws IOException {
    byte[] bytes = imageBytes(true);
    for (int b = 0; b < CHECKSUM + 4; b++) {
      byte[] damaged = flipBit(bytes, b, b % 8);
      damaged = flipBit(damaged, Header.SLOT_BYTES + b, b % 8);
      // The checksum is verified before the version, so a damaged version is corruption.
      Kind kind = b < VERSION ? Kind.NOT_AN_IMAGE : Kind.CORRUPT;
      assertRefused(damaged, kind, "bit " + b % 8 + " of byte " + b + " in both header copies");
    }
    Path file = fileOf(flipBit(flipBit(bytes, 50, 1), Header.SLOT_BYTES + 50, 1), "both.fvd");
    assertRefused(file, Kind.CORRUPT, "both header copies damaged, on a file");
  }

  @Test
  void damaged_newest_header_copy_after_a_crash_still_recovers_flushed_data() throws IOException {
    byte[] bytes = imageBytes(false);
    long newest = Header.slotOffset(headerOf(bytes).generation());
    for (long slotOffset : new long[] {newest, Header.SLOT_BYTES - newest}) {
      for (int b : new int[] {GENERATION, SIZE + 3, ACTIVE_TABLE, JOURNAL_OFFSET + 1, CHECKSUM}) {
        assertOpensWithContent(
            flipBit(bytes, slotOffset + b, 2),
            "crashed image, header copy at " + slotOffset + " damaged at byte " + b);
      }
    }
  }

  @Test
  void a_header_slot_that_was_never_written_is_not_taken_for_damage() throws IOException {
    byte[] bytes = imageBytes(true);
    int older = (int) (Header.SLOT_BYTES - Header.slotOffset(headerOf(bytes).generation()));
    byte[] blank = bytes.clone();
    Arrays.fill(blank, older, older + Header.SLOT_BYTES, (byte) 0);
    try (Image image = Image.open(storageOf(blank, "blank-slot"), true)) {
      assertFalse(image.stats().openedAfterCrash(), "a clean image must open as clean");
      assertArrayEquals(CONTENT, readAll(image));
    }
  }

  /**
   * Changes a field in both header copies, in place in the raw bytes, and gives each copy a valid
   * checksum again; the values are not checked, so several calls can build an absurd header.
   */
  private static byte[] withHeaderField(byte[] bytes, int fieldOffset, long value, int widthBytes) {
    byte[] copy = bytes.clone();
    for (int slot = 0; slot < Header.SLOT_COUNT; slot++) {
      ByteBuffer header =
          ByteBuffer.wrap(copy, slot * Header.SLOT_BYTES, Header.SLOT_BYTES)
              .slice()
              .order(ByteOrder.LITTLE_ENDIAN);
      if (widthBytes == 8) {
        header.putLong(fieldOffset, value);
      } else {
        header.putInt(fieldOffset, (int) value);
      }
      header.putInt(CHECKSUM, crc32c(header, 0, CHECKSUM));
    }
    return copy;
  }

  private static int crc32c(ByteBuffer buf, int from, int to) {
    CRC32C crc = new CRC32C();
    crc.update(buf.duplicate().limit(to).position(from));
    return (int) crc.getValue();
  }

  @Test
  void unsupported_versions_and_features_are_reported_even_with_valid_checksums()
      throws IOException {
    byte[] bytes = imageBytes(true);
    assertRefused(withHeaderField(bytes, VERSION, 3, 4), Kind.UNSUPPORTED_VERSION, "version 3");
    assertRefused(withHeaderField(bytes, VERSION, 0, 4), Kind.UNSUPPORTED_VERSION, "version 0");
    assertRefused(
        withHeaderField(bytes, INCOMPATIBLE, 8, 4), Kind.UNSUPPORTED_VERSION, "unknown feature");
    // Bits 1 (the base is a snapshot) and 2 (snapshots read the base) are known, but only in a
    // clone.
    assertRefused(withHeaderField(bytes, INCOMPATIBLE, 2, 4), Kind.CORRUPT, "snapshot base");
    assertRefused(withHeaderField(bytes, INCOMPATIBLE, 4, 4), Kind.CORRUPT, "base fields");
    // Bit 0 (snapshots) is known, but needs the longer header that names the directory.
    assertRefused(withHeaderField(bytes, INCOMPATIBLE, 1, 4), Kind.CORRUPT, "expected 496");
    assertRefused(withHeaderField(bytes, MAGIC, 0x1234, 8), Kind.NOT_AN_IMAGE, "wrong magic");
    Path file = fileOf(withHeaderField(bytes, VERSION, 99, 4), "v99.fvd");
    assertRefused(file, Kind.UNSUPPORTED_VERSION, "version 99 on a file");
  }

  @Test
  void absurd_header_values_behind_valid_checksums_are_corrupt() throws IOException {
    byte[] bytes = imageBytes(true);
    Header h = headerOf(bytes);
    long data = h.dataOffsetBytes();
    Object[][] cases = {
      {CHUNK_SIZE, 0L, 4, "chunk size 0"},
      {CHUNK_SIZE, 3L, 4, "chunk size 3"},
      {CHUNK_SIZE, 2048L, 4, "chunk size below the minimum"},
      {CHUNK_SIZE, 3L << 20, 4, "chunk size not a power of two"},
      {CHUNK_SIZE, (long) Integer.MIN_VALUE, 4, "chunk size 2^31"},
      {SIZE, 0L, 8, "virtual size 0"},
      {SIZE, -512L, 8, "negative virtual size"},
      {SIZE, 1000L, 8, "virtual size not a multiple of 512"},
      {SIZE, 4 * SIZE_BYTES, 8, "virtual size above the maximum"},
      {MAX_SIZE, 1L << 60, 8, "maximum size past the format limit"},
      {MAX_SIZE, Long.MAX_VALUE, 8, "maximum size Long.MAX_VALUE"},
      {MAX_SIZE, -1L, 8, "negative maximum size"},
      {MAX_SIZE, 1L << 56, 8, "maximum size needing more chunks than ids"},
      {ACTIVE_TABLE, 2L, 4, "active table 2"},
      {ACTIVE_TABLE, -1L, 4, "active table -1"},
      {TABLE_REGION, 0L, 8, "empty table region"},
      {TABLE_REGION, -4096L, 8, "negative table region"},
      {TABLE_REGION, Long.MAX_VALUE, 8, "table region Long.MAX_VALUE"},
      {TABLE0, 0L, 8, "table copy over header copy 0"},
      {TABLE0, 4096L, 8, "table copy over header copy 1"},
      {TABLE0, h.tableOffset1(), 8, "table copies overlapping"},
      {TABLE0, h.tableOffset0() + 1, 8, "table copy not aligned"},
      {TABLE0, -4096L, 8, "negative table offset"},
      {TABLE1, h.journalOffsetBytes(), 8, "table copy over the journal"},
      {TABLE1, data, 8, "table copy in the data area"},
      {TABLE1, Long.MAX_VALUE - 4095, 8, "table offset near Long.MAX_VALUE"},
      {JOURNAL_OFFSET, h.tableOffset1(), 8, "journal over a table copy"},
      {JOURNAL_OFFSET, data - 512, 8, "journal running into the data area"},
      {JOURNAL_SIZE, 0L, 8, "journal size 0"},
      {JOURNAL_SIZE, 100L, 8, "journal size not whole sectors"},
      {JOURNAL_SIZE, -512L, 8, "negative journal size"},
      {JOURNAL_SIZE, 1L << 40, 8, "journal size 1 TiB"},
      {DATA_OFFSET, data + 1, 8, "data offset not aligned"},
      {DATA_OFFSET, h.journalOffsetBytes(), 8, "data offset inside the journal"},
      {DATA_OFFSET, -(1L << 20), 8, "negative data offset"},
      {DATA_OFFSET, Long.MAX_VALUE & ~4095L, 8, "data offset near Long.MAX_VALUE"},
      {DATA_OFFSET, 1L << 40, 8, "data offset past the end of the file"},
      {GROWTH_UNIT, 0L, 8, "growth unit 0"},
      {GROWTH_UNIT, CHUNK_BYTES + 512L, 8, "growth unit not whole chunks"},
      {GROWTH_UNIT, Long.MIN_VALUE, 8, "negative growth unit"},
      {LENGTH, 151L, 4, "header length 151"},
    };
    for (Object[] c : cases) {
      byte[] damaged = withHeaderField(bytes, (int) c[0], (long) c[1], (int) c[2]);
      assertRefused(damaged, Kind.CORRUPT, (String) c[3]);
    }
  }

  @Test
  void header_claiming_a_table_too_large_to_hold_is_refused_without_running_out_of_memory()
      throws IOException {
    // A table of 2^31 - 2 chunks, with every region laid out for it and the file really reserving
    // room for it, sparse: only the table's size is absurd, above the 2^28 entries a table may
    // have.
    long chunks = ChunkTable.MAX_PHYSICAL_CHUNKS;
    long tableRegion = ChunkTable.regionBytes(chunks);
    long table0 = Header.REGION_BYTES;
    long journal = table0 + 2 * tableRegion;
    long data = Header.ceilDiv(journal + 4096, 1 << 20) << 20;
    byte[] bytes = imageBytes(true);
    bytes = withHeaderField(bytes, MAX_SIZE, chunks * CHUNK_BYTES, 8);
    bytes = withHeaderField(bytes, SIZE, chunks * CHUNK_BYTES, 8);
    bytes = withHeaderField(bytes, TABLE_REGION, tableRegion, 8);
    bytes = withHeaderField(bytes, TABLE0, table0, 8);
    bytes = withHeaderField(bytes, TABLE1, table0 + tableRegion, 8);
    bytes = withHeaderField(bytes, JOURNAL_OFFSET, journal, 8);
    bytes = withHeaderField(bytes, DATA_OFFSET, data, 8);
    byte[] header = Arrays.copyOf(bytes, Header.REGION_BYTES);
    assertTimeoutPreemptively(
        TIME_LIMIT,
        () -> {
          MemoryStorage storage = new MemoryStorage("huge-table");
          storage.write(ByteBuffer.wrap(header), 0);
          storage.resize(data + CHUNK_BYTES);
          CorruptImageException e =
              assertThrows(CorruptImageException.class, () -> Image.open(storage, false));
          assertEquals(Kind.CORRUPT, e.kind(), e.getMessage());
          assertTrue(e.getMessage().contains("huge-table"), e.getMessage());
        });
  }

  // --- table copies -----------------------------------------------------------------------------

  @Test
  void damaged_active_table_copy_is_corrupt_and_inactive_copy_is_ignored() throws IOException {
    byte[] bytes = imageBytes(true);
    Header h = headerOf(bytes);
    long active = h.activeTableOffset();
    long inactive = h.tableOffset(1 - h.activeTable());
    for (int entry = 0; entry < h.chunkCount(); entry += 3) {
      long offset = active + entry * 4L + entry % 4;
      assertRefused(flipBit(bytes, offset, entry % 8), Kind.CORRUPT, "active table entry " + entry);
      assertOpensWithContent(
          flipBit(bytes, inactive + entry * 4L, entry % 8), "inactive table entry " + entry);
    }
    Path file = fileOf(flipBit(bytes, active + 8, 0), "table.fvd");
    assertRefused(file, Kind.CORRUPT, "active table damaged, on a file");
  }

  // --- journal records --------------------------------------------------------------------------

  /** A journal record built from the layout in Journal's documentation, with a valid checksum. */
  private static byte[] journalRecord(
      long imageTag, long epoch, int kind, int count, long[][] mappings) {
    ByteBuffer record = ByteBuffer.allocate(512).order(ByteOrder.LITTLE_ENDIAN);
    record.putInt(0, 0x524A5646);
    record.putLong(8, imageTag);
    record.putLong(16, epoch);
    record.putLong(24, 77);
    record.putShort(32, (short) kind);
    record.putShort(34, (short) count);
    for (int i = 0; i < mappings.length; i++) {
      record.putInt(40 + 8 * i, (int) mappings[i][0]);
      record.putInt(44 + 8 * i, (int) mappings[i][1]);
    }
    record.putInt(4, crc32c(record, 8, 512));
    return record.array();
  }

  private static long tagOf(Header header) {
    UUID id = header.imageId();
    return id.getMostSignificantBits() ^ id.getLeastSignificantBits();
  }

  private static byte[] withJournalSector(byte[] bytes, int sector, byte[] record)
      throws IOException {
    byte[] copy = bytes.clone();
    long offset = headerOf(bytes).journalOffsetBytes() + sector * 512L;
    System.arraycopy(record, 0, copy, (int) offset, record.length);
    return copy;
  }

  /** Opens {@code bytes} (a crashed image) and returns what it shows, checking stats on the way. */
  private static byte[] openAndRead(byte[] bytes, long expectedSkipped, String what) {
    return assertTimeoutPreemptively(
        TIME_LIMIT,
        () -> {
          try (Image image = Image.open(storageOf(bytes, "journal-test"), true)) {
            assertEquals(
                expectedSkipped, image.stats().skippedJournalSectors(), what + ": skipped sectors");
            return readAll(image);
          } catch (CorruptImageException e) {
            throw new AssertionError(what + ": refused to open: " + e.getMessage(), e);
          }
        });
  }

  private static byte[] withChunksZeroed(byte[] content, int... chunks) {
    byte[] copy = content.clone();
    for (int c : chunks) {
      Arrays.fill(copy, c * CHUNK_BYTES, (c + 1) * CHUNK_BYTES, (byte) 0);
    }
    return copy;
  }

  @Test
  void garbage_in_an_unused_journal_sector_is_skipped() throws IOException {
    byte[] bytes = imageBytes(false);
    byte[] garbage = new byte[512];
    new SplittableRandom(3).nextBytes(garbage);
    byte[] shown = openAndRead(withJournalSector(bytes, 5, garbage), 1, "garbage in sector 5");
    assertArrayEquals(CONTENT, shown);
  }

  @Test
  void torn_or_flipped_journal_record_is_skipped_not_replayed() throws IOException {
    byte[] bytes = imageBytes(false);
    long journal = headerOf(bytes).journalOffsetBytes();
    // Record 0 maps chunks 0, 2, 3 and 7; without it they read as zeros and their slots leak,
    // because record 1 (chunk 10, the highest slot) still holds the frontier up.
    byte[] flipped = flipBit(bytes, journal + 44, 0);
    assertArrayEquals(
        withChunksZeroed(CONTENT, 0, 2, 3, 7), openAndRead(flipped, 1, "record 0 bit flip"));
    assertEquals(4, Images.check(storageOf(flipped, "leaks")).leakedChunks());

    // A torn sector: its first half new, its second half still what was there before.
    byte[] torn = bytes.clone();
    byte[] before = new byte[256];
    new SplittableRandom(5).nextBytes(before);
    System.arraycopy(before, 0, torn, (int) journal + 512 + 256, before.length);
    assertArrayEquals(withChunksZeroed(CONTENT, 10), openAndRead(torn, 1, "record 1 torn"));
  }

  @Test
  void journal_records_of_another_image_or_an_older_epoch_are_not_replayed() throws IOException {
    byte[] bytes = imageBytes(false);
    Header h = headerOf(bytes);
    // Both would map unwritten chunk 12 onto slot 0, which chunk 0 uses: replaying either would
    // show chunk 0's data at chunk 12, or make the image look corrupt.
    long[][] mapping = {{12, 0}};
    byte[] foreign = journalRecord(tagOf(h) ^ 1, h.stableEpoch(), 1, 1, mapping);
    assertArrayEquals(
        CONTENT, openAndRead(withJournalSector(bytes, 4, foreign), 1, "record of another image"));
    byte[] stale = journalRecord(tagOf(h), h.stableEpoch() - 1, 1, 1, mapping);
    assertArrayEquals(
        CONTENT, openAndRead(withJournalSector(bytes, 4, stale), 0, "record of an older epoch"));
  }

  @Test
  void valid_journal_records_with_impossible_values_are_corrupt() throws IOException {
    byte[] bytes = imageBytes(false);
    Header h = headerOf(bytes);
    long tag = tagOf(h);
    long epoch = h.stableEpoch();
    Object[][] cases = {
      {journalRecord(tag, epoch, 1, 1, new long[][] {{1000, 5}}), "chunk index past the table"},
      {journalRecord(tag, epoch, 1, 1, new long[][] {{12, 1_000_000}}), "slot past the file"},
      {journalRecord(tag, epoch, 1, 1, new long[][] {{0, 4}}), "chunk mapped twice"},
      {journalRecord(tag, epoch, 1, 1, new long[][] {{12, 0}}), "slot used twice"},
      {journalRecord(tag, epoch, 2, 1, new long[][] {{12, 5}}), "unknown record kind"},
      {journalRecord(tag, epoch, 1, 0, new long[][] {}), "record with no mappings"},
      {journalRecord(tag, epoch, 1, 60, new long[][] {{12, 5}}), "record with 60 mappings"},
      {journalRecord(tag, epoch + 1, 1, 1, new long[][] {{12, 5}}), "record of a newer epoch"},
    };
    for (Object[] c : cases) {
      assertRefused(withJournalSector(bytes, 4, (byte[]) c[0]), Kind.CORRUPT, (String) c[1]);
    }
  }

  // --- random damage ----------------------------------------------------------------------------

  @Test
  void random_damage_to_metadata_never_escapes_as_another_exception() throws IOException {
    byte[][] images = {imageBytes(true), imageBytes(false)};
    int opened = 0;
    int refused = 0;
    for (int seed = 0; seed < RANDOM_SEEDS; seed++) {
      SplittableRandom random = new SplittableRandom(seed);
      byte[] base = images[seed % 2];
      Header h = headerOf(base);
      byte[] damaged = base.clone();
      boolean fixHeaderChecksum = random.nextBoolean();
      int flips = 1 + random.nextInt(8);
      for (int i = 0; i < flips; i++) {
        long offset =
            switch (random.nextInt(4)) {
              case 0 -> random.nextInt(CHECKSUM);
              case 1 -> h.activeTableOffset() + random.nextInt((int) h.chunkCount() * 4);
              case 2 -> h.journalOffsetBytes() + random.nextInt(1024);
              default -> random.nextLong(h.dataOffsetBytes());
            };
        damaged[(int) offset] ^= (byte) (1 << random.nextInt(8));
      }
      if (fixHeaderChecksum) {
        // Let the damaged values through the checksum, so the value checks must catch them.
        ByteBuffer header = ByteBuffer.wrap(damaged, 0, Header.SLOT_BYTES).slice();
        header.order(ByteOrder.LITTLE_ENDIAN).putInt(CHECKSUM, crc32c(header, 0, CHECKSUM));
      }
      String what = "random damage, seed " + seed;
      byte[] input = damaged;
      boolean ok =
          assertTimeoutPreemptively(
              TIME_LIMIT, () -> openReadAndCheck(input, random.nextBoolean(), what), what);
      if (ok) {
        opened++;
      } else {
        refused++;
      }
    }
    System.out.printf(
        "CorruptImageTest: %d randomly damaged images opened, %d refused, none escaped%n",
        opened, refused);
  }

  /**
   * Opens damaged bytes; returns true if they opened (and then reads and checks them), false if
   * they were refused as corrupt. Any other outcome fails.
   */
  private static boolean openReadAndCheck(byte[] bytes, boolean writable, String what) {
    MemoryStorage storage;
    try {
      storage = storageOf(bytes, "fuzzed");
      Images.check(storage);
    } catch (IOException | RuntimeException e) {
      throw new AssertionError(what + ": offline check threw " + e, e);
    }
    try (Image image = Image.open(storage, writable)) {
      // The virtual size may be large after damage; read its start, its end and a middle piece.
      long size = image.sizeBytes();
      List<Long> offsets = new ArrayList<>(List.of(0L, size / 2, Math.max(0, size - 65536)));
      for (long offset : offsets) {
        image.read(offset, ByteBuffer.allocate((int) Math.min(65536, size - offset)));
      }
      image.check(false);
      return true;
    } catch (CorruptImageException e) {
      assertTrue(e.getMessage().contains("fuzzed"), what + ": unnamed: " + e.getMessage());
      return false;
    } catch (IOException | RuntimeException e) {
      throw new AssertionError(what + ": escaped as " + e, e);
    }
  }
}
