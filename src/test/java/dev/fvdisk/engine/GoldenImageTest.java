package dev.fvdisk.engine;

import static org.assertj.core.api.Assertions.assertThat;

import dev.fvdisk.engine.io.FileStorage;
import dev.fvdisk.engine.io.Storage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every golden file (see {@link GoldenImages}) opens, or is refused, exactly as the v1 engine that
 * wrote it did: same figures, extent map and content, same offline check verdict. A writable open,
 * which recovers on disk what a read-only open recovers in memory, leaves the same content.
 */
class GoldenImageTest {

  @TempDir Path scratch;

  static Stream<String> files() {
    return GoldenImages.FILES.stream();
  }

  private static Map<String, String> expected(String name) {
    Properties all = GoldenImages.expected();
    Map<String, String> facts = new TreeMap<>();
    for (String key : all.stringPropertyNames()) {
      if (key.startsWith(name + ".")) {
        facts.put(key.substring(name.length() + 1), all.getProperty(key));
      }
    }
    return facts;
  }

  @Test
  void every_golden_file_has_expectations() {
    for (String name : GoldenImages.FILES) {
      assertThat(expected(name)).as(name).containsKey("open");
    }
  }

  /** The expectations are not merely what the v1 engine read: the plain image is its recipe. */
  @Test
  void the_plain_image_holds_exactly_what_its_recipe_wrote() throws IOException {
    Path file = GoldenImages.unpack("plain", null, scratch);
    try (Image image = Images.open(file, false)) {
      java.nio.ByteBuffer all = java.nio.ByteBuffer.allocate((int) image.sizeBytes());
      image.read(0, all);
      assertThat(all.array()).isEqualTo(GoldenImages.plainModel());
    }
  }

  /** The header codec writes every valid v1 header slot back byte for byte. */
  @ParameterizedTest
  @MethodSource("files")
  void every_valid_header_slot_encodes_back_to_the_same_bytes(String name) throws IOException {
    byte[] file = Files.readAllBytes(GoldenImages.unpack(name, null, scratch));
    int compared = 0;
    for (int slot = 0; slot < Header.SLOT_COUNT && file.length >= Header.REGION_BYTES; slot++) {
      java.nio.ByteBuffer bytes =
          java.nio.ByteBuffer.wrap(file, slot * Header.SLOT_BYTES, Header.SLOT_BYTES)
              .slice()
              .order(java.nio.ByteOrder.LITTLE_ENDIAN);
      Header decoded;
      try {
        decoded = Header.decode(bytes, name, (long) slot * Header.SLOT_BYTES);
      } catch (CorruptImageException damaged) {
        continue;
      }
      assertThat(decoded.encode().array()).as("%s slot %d", name, slot).isEqualTo(toArray(bytes));
      compared++;
    }
    if ("ok".equals(expected(name).get("open"))) {
      assertThat(compared).as("valid header slots of %s", name).isPositive();
    }
  }

  /**
   * The local metadata log encodes a checkpoint's table and bitmap exactly as the v1 engine wrote
   * the active copies of every sound golden file: the persistence port changed no byte.
   */
  @ParameterizedTest
  @MethodSource("files")
  void checkpoint_encoding_matches_the_active_copies_byte_for_byte(String name) throws IOException {
    if (!"ok".equals(expected(name).get("open"))) {
      return;
    }
    Path file = GoldenImages.unpack(name, null, scratch);
    byte[] bytes = Files.readAllBytes(file);
    try (Storage storage = FileStorage.open(file, false)) {
      Header header = Header.read(storage);
      ChunkTable table = ChunkTable.load(storage, header);
      java.nio.ByteBuffer encodedTable =
          FileMetadataLog.encodeTable(table.durableWith(ChunkTable.Taken.NONE));
      assertThat(toArray(encodedTable))
          .as("%s table", name)
          .isEqualTo(slice(bytes, header.activeTableOffset(), encodedTable.remaining()));
      if (header.dependsOnBase()) {
        Bitmap bitmap = Bitmap.load(storage, header);
        java.nio.ByteBuffer encodedBits =
            FileMetadataLog.encodeBitmap(bitmap.durableWith(new long[0]));
        assertThat(toArray(encodedBits))
            .as("%s bitmap", name)
            .isEqualTo(slice(bytes, header.activeBitmapOffset(), encodedBits.remaining()));
      }
    }
  }

  private static byte[] slice(byte[] bytes, long offset, int length) {
    return java.util.Arrays.copyOfRange(bytes, (int) offset, (int) offset + length);
  }

  private static byte[] toArray(java.nio.ByteBuffer bytes) {
    byte[] copy = new byte[bytes.remaining()];
    bytes.duplicate().get(copy);
    return copy;
  }

  @ParameterizedTest
  @MethodSource("files")
  void opens_read_only_as_the_v1_engine_did(String name) throws IOException {
    assertThat(GoldenImages.describe(name, null, scratch)).isEqualTo(expected(name));
  }

  @ParameterizedTest
  @MethodSource("files")
  void a_writable_open_recovers_the_same_content(String name) throws IOException {
    Map<String, String> expected = expected(name);
    if (!"ok".equals(expected.get("open")) || "true".equals(expected.get("readOnly"))) {
      return;
    }
    Path file = GoldenImages.unpack(name, null, scratch);
    Path copy = Files.copy(file, scratch.resolve(name + "-writable.fvd"));
    Path basePath = GoldenImages.unpack("base", null, scratch);
    try (Image base = Images.open(basePath, false)) {
      // Opened and closed only: reading through a clone with copy-on-read would copy its base
      // blocks in, and the map would rightly change.
      try (Storage storage = FileStorage.open(copy, true);
          Image image = Image.open(storage, true, locator -> base, PrefetchTuning.DEFAULTS)) {
        assertThat(image.sizeBytes()).isEqualTo(Long.parseLong(expected.get("sizeBytes")));
      }
      try (Storage storage = FileStorage.open(copy, false);
          Image image = Image.open(storage, false, locator -> base)) {
        assertThat(GoldenImages.contentFacts(image)).isEqualTo(contentOnly(expected));
        assertThat(image.stats().openedAfterCrash()).as("clean after a close").isFalse();
      }
    }
    assertThat(Images.check(copy).problems()).isEmpty();
    Files.move(copy, scratch.resolve("done-" + name), StandardCopyOption.REPLACE_EXISTING);
  }

  private static Map<String, String> contentOnly(Map<String, String> facts) {
    Map<String, String> content = new TreeMap<>();
    for (String key : new String[] {"sizeBytes", "extents", "sha256", "regions"}) {
      content.put(key, facts.get(key));
    }
    return content;
  }
}
