package dev.fvdisk.engine;

import dev.fvdisk.engine.io.FileStorage;
import dev.fvdisk.engine.io.MemoryStorage;
import dev.fvdisk.engine.io.Storage;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.TreeMap;
import java.util.zip.GZIPInputStream;
import java.util.zip.GZIPOutputStream;

/**
 * The golden image files: version-1 images written once by the v1 engine and kept in {@code
 * src/test/resources/golden} (gzipped), with what the v1 engine read from them in {@code
 * expected.properties}. {@link GoldenImageTest} opens every one after every change and must find
 * the same; they are the safety net of the redesign and of every later format change, which must
 * keep opening v1 images.
 *
 * <p>The set: a plain image, a read-only base and a clone of it, a plain image and a clone left as
 * a crash leaves them (journal records to replay; writes that never became durable), the crashed
 * one with its first journal record torn (leaked chunks: slots written whose mapping is lost while
 * a later slot's survived), and damaged copies (truncated, one bit flipped in a header, the chunk
 * table, a data chunk).
 *
 * <p>Written by {@link #main} ({@code ./mvnw test-compile exec:java -Dexec.classpathScope=test
 * -Dexec.mainClass=dev.fvdisk.engine.GoldenImages}) from the code of the day. Regenerating them
 * with changed code defeats their purpose: do it only to add files.
 */
final class GoldenImages {

  static final String RESOURCES = "/golden/";
  static final String EXPECTED = "expected.properties";
  static final List<String> FILES =
      List.of(
          "plain",
          "base",
          "clone",
          "crashed",
          "crashed-clone",
          "truncated-header",
          "truncated-data",
          "bitflip-header",
          "bitflip-table",
          "torn-journal",
          "bitflip-data");

  private static final int CHUNK = 64 << 10;
  private static final int BLOCK = 4096;

  private GoldenImages() {}

  private static ImageOptions.Builder options(long sizeBytes) {
    return ImageOptions.builder(sizeBytes)
        .chunkSizeBytes(CHUNK)
        .maxSizeBytes(2L << 20)
        .blockSizeBytes(BLOCK)
        .journalSizeBytes(16 * 512)
        .growthUnitBytes(4L * CHUNK);
  }

  private static ByteBuffer pattern(int length, int seed) {
    byte[] b = new byte[length];
    new Random(seed).nextBytes(b);
    return ByteBuffer.wrap(b);
  }

  /** Where the plain image's recipe writes: the image, or a byte array that models it. */
  interface Disk {
    void write(long offset, ByteBuffer data) throws IOException;

    void zero(long offset, long length) throws IOException;
  }

  /** What the plain golden image holds, written to {@code disk}. */
  static void writePlain(Disk disk) throws IOException {
    disk.write(0, pattern(5000, 1));
    disk.write(3L * CHUNK + 100, pattern(70_000, 2));
    disk.write((1 << 20) - 512, pattern(512, 3));
    disk.zero(3L * CHUNK + 1000, 2000);
    disk.write(9L * CHUNK, pattern(CHUNK, 4));
  }

  /** The plain image's content, from the recipe alone. */
  static byte[] plainModel() throws IOException {
    byte[] model = new byte[1 << 20];
    writePlain(
        new Disk() {
          @Override
          public void write(long offset, ByteBuffer data) {
            data.get(model, (int) offset, data.remaining());
          }

          @Override
          public void zero(long offset, long length) {
            java.util.Arrays.fill(model, (int) offset, (int) (offset + length), (byte) 0);
          }
        });
    return model;
  }

  /** Writes every golden file and its expectations into {@code args[0]} (default: resources). */
  public static void main(String[] args) throws IOException {
    Path dir = Path.of(args.length > 0 ? args[0] : "src/test/resources/golden");
    Files.createDirectories(dir);
    Map<String, byte[]> files = new TreeMap<>();

    MemoryStorage plain = new MemoryStorage("plain");
    try (Image image = Image.create(plain, options(1 << 20).build())) {
      writePlain(
          new Disk() {
            @Override
            public void write(long offset, ByteBuffer data) throws IOException {
              image.write(offset, data);
            }

            @Override
            public void zero(long offset, long length) throws IOException {
              image.zero(offset, length);
            }
          });
      image.flush();
    }
    files.put("plain", bytes(plain));

    MemoryStorage base = new MemoryStorage("base");
    try (Image image = Image.create(base, options(512 << 10).build())) {
      image.write(0, pattern(512 << 10, 5));
      image.zero(2L * CHUNK, CHUNK);
    }
    Image.setReadOnly(base.reopen(), true);
    files.put("base", bytes(base));

    MemoryStorage clone = new MemoryStorage("clone");
    MemoryStorage crashedClone = new MemoryStorage("crashed-clone");
    try (Image baseImage = Image.open(base.reopen(), false)) {
      try (Image image =
          Image.create(clone, options(1 << 20).copyOnRead(true).build(), baseImage, "base")) {
        image.write(BLOCK + 10, pattern(3000, 6));
        image.write((512 << 10) - 1000, pattern(5000, 7));
        image.read(6L * BLOCK, ByteBuffer.allocate(3 * BLOCK));
        image.zero(40L * BLOCK, BLOCK + 512);
      }
      files.put("clone", bytes(clone));

      // A crash of a clone: some writes flushed (range records for the bitmap), the rest not.
      Image image =
          Image.create(crashedClone, options(1 << 20).copyOnRead(true).build(), baseImage, "base");
      image.write(2L * BLOCK + 7, pattern(100, 8));
      image.write(600L << 10, pattern(CHUNK, 9));
      image.flush();
      image.write(20L * BLOCK, pattern(2 * BLOCK, 10));
      image.write(800L << 10, pattern(CHUNK, 11));
      files.put("crashed-clone", bytes(crashedClone));
      // Abandoned without close, as a SIGKILL leaves it; memory storage kept every write.
    }

    MemoryStorage crashed = new MemoryStorage("crashed");
    Image image = Image.create(crashed, options(1 << 20).build());
    image.write(0, pattern(CHUNK + 1000, 12));
    image.flush();
    image.write(5L * CHUNK + 17, pattern(3000, 13));
    image.flush();
    // Written but never made durable: lost in the crash, the slots past the frontier cut off.
    image.write(7L * CHUNK, pattern(2 * CHUNK, 14));
    files.put("crashed", bytes(crashed));

    byte[] plainBytes = files.get("plain");
    files.put("truncated-header", java.util.Arrays.copyOf(plainBytes, 6000));
    long dataOffset = le64(plainBytes, newestHeader(plainBytes) + 0x78);
    files.put(
        "truncated-data",
        java.util.Arrays.copyOf(plainBytes, (int) dataOffset + CHUNK + CHUNK / 2));
    files.put("bitflip-header", flip(plainBytes, newestHeader(plainBytes) + 0x28));
    int header = newestHeader(plainBytes);
    long table =
        le32(plainBytes, header + 0x44) == 0
            ? le64(plainBytes, header + 0x48)
            : le64(plainBytes, header + 0x50);
    files.put("bitflip-table", flip(plainBytes, (int) table + 4 * 3 + 1));
    byte[] crashedBytes = files.get("crashed");
    long journal = le64(crashedBytes, newestHeader(crashedBytes) + 0x68);
    // The first journal record torn, as a power loss can leave a sector: its mappings are lost,
    // the second record's survive, so the slots of the first are leaked.
    files.put("torn-journal", flip(crashedBytes, (int) journal + 0x30));
    files.put("bitflip-data", flip(plainBytes, (int) dataOffset + 200));

    for (Map.Entry<String, byte[]> f : files.entrySet()) {
      try (OutputStream out =
          new GZIPOutputStream(Files.newOutputStream(dir.resolve(f.getKey() + ".fvd.gz")))) {
        out.write(f.getValue());
      }
    }
    Properties expected = new Properties();
    Path scratch = Files.createTempDirectory("golden-");
    for (String name : FILES) {
      describe(name, dir, scratch).forEach((k, v) -> expected.setProperty(name + "." + k, v));
    }
    // Sorted and without the date Properties.store writes, so that adding a file shows as such.
    java.io.StringWriter text = new java.io.StringWriter();
    expected.store(text, null);
    List<String> lines =
        new ArrayList<>(text.toString().lines().filter(l -> !l.startsWith("#")).toList());
    lines.sort(null);
    lines.add(0, "# What the v1 engine read from the golden files; written by GoldenImages");
    Files.write(dir.resolve(EXPECTED), lines);
    System.out.println("Wrote " + files.size() + " golden files and their expectations to " + dir);
  }

  // ---- what is recorded, and compared ----

  /**
   * What opening golden file {@code name} read-only shows: refused (and why, by kind), or its
   * figures, its extent map, a digest of its content per 64 KiB and over all, and the offline
   * check's verdict. The file is unpacked into {@code scratch} and never changed.
   */
  static Map<String, String> describe(String name, Path goldenDir, Path scratch)
      throws IOException {
    Path file = unpack(name, goldenDir, scratch);
    Map<String, String> facts = new TreeMap<>();
    try (Storage storage = FileStorage.open(file, false)) {
      CheckReport report = Images.check(storage);
      facts.put(
          "check",
          report.status()
              + " leaked="
              + report.leakedChunks()
              + " problems="
              + report.problems().size());
    } catch (IOException | RuntimeException e) {
      facts.put("check", "threw " + e.getClass().getSimpleName());
    }
    Path basePath = unpack("base", goldenDir, scratch);
    try (Image base = Images.open(basePath, false);
        Storage storage = FileStorage.open(file, false);
        Image image = Image.open(storage, false, locator -> base)) {
      facts.putAll(contentFacts(image));
      ImageStats stats = image.stats();
      facts.put("usedBytes", String.valueOf(stats.usedBytes()));
      facts.put("leakedChunks", String.valueOf(stats.leakedChunks()));
      facts.put("replayedJournalRecords", String.valueOf(stats.replayedJournalRecords()));
      facts.put("skippedJournalSectors", String.valueOf(stats.skippedJournalSectors()));
      facts.put("openedAfterCrash", String.valueOf(stats.openedAfterCrash()));
      facts.put("readOnly", String.valueOf(image.isReadOnly()));
      facts.put("base", String.valueOf(image.baseLocator()));
      facts.put("open", "ok");
    } catch (CorruptImageException e) {
      facts.put("open", "refused " + e.kind());
    }
    return facts;
  }

  /** The virtual size, the extent map and content digests: what reading the image gives. */
  static Map<String, String> contentFacts(Image image) throws IOException {
    Map<String, String> facts = new TreeMap<>();
    facts.put("sizeBytes", String.valueOf(image.sizeBytes()));
    StringBuilder extents = new StringBuilder();
    for (Extent e : image.extents(0, image.sizeBytes(), Integer.MAX_VALUE)) {
      extents.append(e.offsetBytes()).append('+').append(e.lengthBytes()).append(':');
      extents.append(e.state().name().toLowerCase(java.util.Locale.ROOT)).append(' ');
    }
    facts.put("extents", extents.toString().trim());
    MessageDigest all = sha256();
    List<String> regions = new ArrayList<>();
    ByteBuffer buffer = ByteBuffer.allocate(CHUNK);
    for (long at = 0; at < image.sizeBytes(); at += CHUNK) {
      buffer.clear().limit((int) Math.min(CHUNK, image.sizeBytes() - at));
      image.read(at, buffer);
      buffer.flip();
      all.update(buffer.duplicate());
      MessageDigest region = sha256();
      region.update(buffer);
      regions.add(HexFormat.of().formatHex(region.digest()).substring(0, 12));
    }
    facts.put("sha256", HexFormat.of().formatHex(all.digest()));
    facts.put("regions", String.join(",", regions));
    return facts;
  }

  /** The golden file {@code name}, unpacked into {@code scratch} (once). */
  static Path unpack(String name, Path goldenDir, Path scratch) throws IOException {
    Path target = scratch.resolve(name + ".fvd");
    if (!Files.exists(target)) {
      try (InputStream in =
          goldenDir == null
              ? GoldenImages.class.getResourceAsStream(RESOURCES + name + ".fvd.gz")
              : Files.newInputStream(goldenDir.resolve(name + ".fvd.gz"))) {
        if (in == null) {
          throw new IOException("no golden file " + name);
        }
        try (InputStream gz = new GZIPInputStream(in)) {
          Files.write(target, gz.readAllBytes());
        }
      }
    }
    return target;
  }

  private static byte[] bytes(MemoryStorage storage) throws IOException {
    storage.reopen();
    ByteBuffer all = ByteBuffer.allocate((int) storage.sizeBytes());
    storage.read(all, 0);
    return all.array();
  }

  /** The header slot with the larger generation (both checksummed when written). */
  private static int newestHeader(byte[] file) {
    return le64(file, 0x10) >= le64(file, 4096 + 0x10) ? 0 : 4096;
  }

  private static byte[] flip(byte[] file, int offset) {
    byte[] copy = file.clone();
    copy[offset] ^= 0x10;
    return copy;
  }

  private static long le64(byte[] b, int at) {
    return ByteBuffer.wrap(b, at, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
  }

  private static long le32(byte[] b, int at) {
    return ByteBuffer.wrap(b, at, 4).order(ByteOrder.LITTLE_ENDIAN).getInt() & 0xFFFFFFFFL;
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  static Properties expected() {
    Properties p = new Properties();
    try (InputStream in = GoldenImages.class.getResourceAsStream(RESOURCES + EXPECTED)) {
      if (in == null) {
        throw new IOException("no " + RESOURCES + EXPECTED + " on the test class path");
      }
      p.load(in);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return p;
  }
}
