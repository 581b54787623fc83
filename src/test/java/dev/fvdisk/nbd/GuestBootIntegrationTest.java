package dev.fvdisk.nbd;

import static io.restassured.RestAssured.given;
import static org.assertj.core.api.Assertions.assertThat;

import dev.fvdisk.testing.GuestTools;
import dev.fvdisk.testing.QemuImg;
import dev.fvdisk.testing.TinyLinux;
import io.restassured.path.json.JsonPath;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A Linux guest under QEMU boots from a clone of a golden image over NBD, with copy-on-read and
 * prefetching on, writes to it and to a second disk, and powers off; HTTP then shows what it wrote,
 * what copy-on-read brought in, and a golden image left as it was. The guest is made here from
 * Debian's kernel and busybox ({@link TinyLinux}). Skipped where those are missing, except in CI.
 */
class GuestBootIntegrationTest extends NbdServiceTestSupport {

  private static final long ROOT_DISK_BYTES = 32 * MIB;
  private static final long SCRATCH_DISK_BYTES = 8 * MIB;

  /** The guest writes this line over and over, to a file and to the second disk. */
  private static final String PATTERN_LINE = "fvdisk guest boot\n";

  private static final int PATTERN_BYTES = (int) (4 * MIB);
  private static final long SCRATCH_OFFSET_BYTES = MIB;

  /**
   * The golden image's init. Everything it runs is read from the clone; it records what it ran on,
   * writes the pattern to a file and to {@code /dev/vdb}, and powers off once that is on disk.
   * {@code set -e}: a failed step ends init, which panics the kernel and so ends QEMU at once;
   * {@code -x} puts each step on the console, which the test shows when the guest fails.
   */
  private static final String GUEST_INIT =
      """
      #!/bin/sh
      set -ex
      export PATH=/bin
      mount -t proc proc /proc
      mount -t devtmpfs devtmpfs /dev
      echo "kernel $(uname -r)" > /root/report.txt
      echo "busybox $(sha256sum /bin/busybox | cut -d ' ' -f 1)" >> /root/report.txt
      yes '%s' | head -c %d > /root/pattern.bin
      dd if=/root/pattern.bin of=/dev/vdb bs=65536 seek=%d conv=fsync
      sync
      mount -o remount,ro /
      echo 'guest: all written'
      poweroff -f
      """
          .formatted(PATTERN_LINE.strip(), PATTERN_BYTES, SCRATCH_OFFSET_BYTES / 65536);

  @Test
  void a_guest_boots_from_a_copy_on_read_clone_and_its_writes_stay_in_the_clone(@TempDir Path work)
      throws Exception {
    GuestTools.assumeAvailable();
    TinyLinux.Kernel kernel = TinyLinux.Kernel.installed().orElseThrow();

    // A file the guest never opens: its blocks show that copy-on-read took only what was read.
    byte[] untouched = new byte[(int) (4 * MIB)];
    new Random(11).nextBytes(untouched);
    Path goldenFile = work.resolve("golden.raw");
    TinyLinux.rootFileSystem(
        work, goldenFile, ROOT_DISK_BYTES, GUEST_INIT, Map.of("opt/untouched.bin", untouched));
    String goldenSha256 = sha256(Files.readAllBytes(goldenFile));

    create(Map.of("name", "golden", "sizeBytes", ROOT_DISK_BYTES));
    QemuImg.run(
        work, "qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", "golden.raw", uri("golden"));
    assertThat(sha256(httpReadAll("golden"))).isEqualTo(goldenSha256);
    patch("golden", Map.of("readOnly", true));

    // The copy-on-write unit is the file system's block, so the map says exactly which blocks
    // the guest read. Prefetching is on but waits an hour: otherwise it could copy the whole
    // golden image before the guest reads anything, and nothing would show what copy-on-read did.
    // Once the guest is off, the wait is cut to nothing.
    create(
        Map.of(
            "name",
            "clone",
            "base",
            "golden",
            "blockSizeBytes",
            TinyLinux.FILE_SYSTEM_BLOCK_BYTES,
            "copyOnRead",
            true,
            "prefetch",
            Map.of("enabled", true, "startDelaySeconds", 3600)));
    create(Map.of("name", "scratch", "sizeBytes", SCRATCH_DISK_BYTES));

    String console =
        TinyLinux.boot(
            work, kernel, TinyLinux.initramfs(work, kernel), List.of(uri("clone"), uri("scratch")));
    assertThat(console).as("the guest's console").contains("guest: all written");

    // Copy-on-read stored busybox, which the guest ran and hashed, and nothing of the file it
    // never opened; prefetching has not started. (This comes before any HTTP read of the clone,
    // which would copy on read too.)
    for (long[] run : blockRuns(work, "/bin/busybox")) {
      assertThat(mapStates("clone", run[0], run[1])).as("busybox's blocks").containsOnly("data");
    }
    for (long[] run : blockRuns(work, "/opt/untouched.bin")) {
      assertThat(mapStates("clone", run[0], run[1])).as("the unread file").containsOnly("base");
    }
    JsonPath waiting = image("clone");
    assertThat(waiting.getString("prefetch.state")).isEqualTo("waiting");
    assertThat(waiting.getLong("prefetch.copiedBytes")).isLessThan(ROOT_DISK_BYTES);
    assertThat(sha256(httpReadAll("golden"))).as("the golden image").isEqualTo(goldenSha256);

    // Prefetching now copies the rest; the clone then stands alone and its base may go.
    patch("clone", Map.of("prefetch", Map.of("enabled", true, "startDelaySeconds", 0)));
    JsonPath done = awaitPrefetchDone("clone");
    assertThat(done.getLong("prefetch.copiedBytes")).isEqualTo(ROOT_DISK_BYTES);
    assertThat(done.getString("base")).isNull();
    given().port(httpPort).delete(IMAGES + "/golden").then().statusCode(204);

    // The clone holds a sound file system with what the guest wrote, read out over HTTP.
    Files.write(work.resolve("clone.raw"), httpReadAll("clone"));
    QemuImg.run(work, "e2fsck", "-f", "-n", "clone.raw");
    assertThat(debugfsDump(work, "clone.raw", "/root/report.txt"))
        .asString(StandardCharsets.UTF_8)
        .isEqualTo(
            "kernel "
                + kernel.release()
                + "\nbusybox "
                + sha256(Files.readAllBytes(GuestTools.BUSYBOX))
                + "\n");
    byte[] pattern = pattern();
    assertSameBytes(
        "the pattern file", debugfsDump(work, "clone.raw", "/root/pattern.bin"), pattern);
    assertSameBytes(
        "the second disk", httpRead("scratch", SCRATCH_OFFSET_BYTES, PATTERN_BYTES), pattern);
  }

  private static byte[] pattern() {
    byte[] line = PATTERN_LINE.getBytes(StandardCharsets.US_ASCII);
    byte[] pattern = new byte[PATTERN_BYTES];
    for (int i = 0; i < pattern.length; i++) {
      pattern[i] = line[i % line.length];
    }
    return pattern;
  }

  /** Compares megabytes without printing them all when they differ. */
  private static void assertSameBytes(String what, byte[] actual, byte[] expected) {
    assertThat(actual.length).as("bytes in %s", what).isEqualTo(expected.length);
    assertThat(Arrays.mismatch(actual, expected)).as("first wrong byte of %s", what).isEqualTo(-1);
  }

  /** A file's content, read from a file system image by e2fsprogs' debugfs, nothing mounted. */
  private static byte[] debugfsDump(Path work, String image, String path) throws Exception {
    Path out = work.resolve("dumped-" + path.substring(path.lastIndexOf('/') + 1));
    Files.deleteIfExists(out);
    QemuImg.run(work, "debugfs", "-R", "dump " + path + " " + out, image);
    assertThat(out).as("debugfs dumped %s", path).exists();
    return Files.readAllBytes(out);
  }

  /**
   * Where a file of the golden image keeps its data, as byte ranges {offset, length}: its blocks
   * from debugfs, neighbours merged.
   */
  private static List<long[]> blockRuns(Path work, String path) throws Exception {
    String blocks = QemuImg.run(work, "debugfs", "-R", "blocks " + path, "golden.raw");
    List<long[]> runs = new ArrayList<>();
    long blockBytes = TinyLinux.FILE_SYSTEM_BLOCK_BYTES;
    // The block numbers are the one line of digits; debugfs adds its banner.
    String numbers =
        blocks.lines().filter(line -> line.matches("[0-9 ]+")).findFirst().orElse("").trim();
    assertThat(numbers).as("blocks of %s: %s", path, blocks).isNotEmpty();
    for (String word : numbers.split(" +")) {
      long offset = Long.parseLong(word) * blockBytes;
      long[] last = runs.isEmpty() ? null : runs.get(runs.size() - 1);
      if (last != null && last[0] + last[1] == offset) {
        last[1] += blockBytes;
      } else {
        runs.add(new long[] {offset, blockBytes});
      }
    }
    return runs;
  }

  /** The states the clone's map gives a byte range, over as many pages as it takes. */
  private Set<String> mapStates(String name, long offsetBytes, long lengthBytes) {
    Set<String> states = new TreeSet<>();
    long endBytes = offsetBytes + lengthBytes;
    Number next = offsetBytes;
    while (next != null) {
      JsonPath page =
          given()
              .port(httpPort)
              .queryParam("offsetBytes", next.longValue())
              .queryParam("lengthBytes", endBytes - next.longValue())
              .get(IMAGES + "/" + name + "/map")
              .then()
              .statusCode(200)
              .extract()
              .jsonPath();
      states.addAll(page.getList("extents.state", String.class));
      next = page.get("nextOffsetBytes");
    }
    return states;
  }

  private JsonPath awaitPrefetchDone(String name) throws InterruptedException {
    long deadline = System.nanoTime() + 60_000_000_000L;
    JsonPath image = image(name);
    while (!image.getString("prefetch.state").equals("done") && System.nanoTime() < deadline) {
      Thread.sleep(50);
      image = image(name);
    }
    assertThat(image.getString("prefetch.state")).as(image.prettify()).isEqualTo("done");
    return image;
  }

  private static String sha256(byte[] bytes) throws Exception {
    return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
  }
}
