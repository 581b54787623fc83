package dev.fvdisk.web;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * QEMU as a real client: its HTTP block driver opens with HEAD and reads with single Range
 * requests. Needs qemu-img with the curl block driver (Debian: qemu-utils and qemu-block-extra);
 * skipped where it is missing. Every run is under a timeout, and with {@code -m 1}, because QEMU
 * 7.2's driver can stall with several reads in flight.
 */
class QemuInteropIntegrationTest extends ApiTestSupport {

  private static final long TIMEOUT_SECONDS = 120;

  @Test
  void qemu_img_reads_exactly_the_bytes_written_and_the_virtual_size(@TempDir Path work)
      throws Exception {
    // CI installs QEMU and sets FVDISK_REQUIRE_QEMU, so there a missing qemu-img fails the run
    // instead of skipping the one test that talks to a real client.
    if (System.getenv("FVDISK_REQUIRE_QEMU") != null) {
      org.junit.jupiter.api.Assertions.assertTrue(
          qemuImgAvailable(), "FVDISK_REQUIRE_QEMU is set but qemu-img cannot run");
    }
    assumeTrue(qemuImgAvailable(), "qemu-img is not installed");
    long size = 24 * MIB;
    String name = createImage("qemu", size, 65536L);
    byte[] expected = new byte[(int) size];
    long[] offsets = {0, 3 * MIB - 100, 10 * MIB + 12345, size - 4096};
    for (int i = 0; i < offsets.length; i++) {
      byte[] piece = pattern(70000 - i * 10000, i + 1);
      int length = (int) Math.min(piece.length, size - offsets[i]);
      byte[] clipped = java.util.Arrays.copyOf(piece, length);
      write(name, offsets[i], clipped);
      System.arraycopy(clipped, 0, expected, (int) offsets[i], length);
    }
    String url = "http://localhost:" + port + IMAGES + "/" + name + "/data";

    String info = run(work, "qemu-img", "info", "--output=json", url);
    assertThat(info).contains("\"virtual-size\": " + size);

    Path out = work.resolve("out.raw");
    run(work, "qemu-img", "convert", "-m", "1", "-f", "raw", "-O", "raw", url, out.toString());
    assertThat(Files.size(out)).isEqualTo(size);
    assertThat(Files.readAllBytes(out)).isEqualTo(expected);
  }

  private static boolean qemuImgAvailable() {
    try {
      Process p = new ProcessBuilder("qemu-img", "--version").redirectErrorStream(true).start();
      p.getInputStream().readAllBytes();
      return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
    } catch (IOException | InterruptedException e) {
      return false;
    }
  }

  private static String run(Path work, String... command) throws Exception {
    List<String> line = new ArrayList<>(List.of(command));
    Path output = work.resolve("qemu-output.txt");
    Process p =
        new ProcessBuilder(line)
            .directory(work.toFile())
            .redirectErrorStream(true)
            .redirectOutput(output.toFile())
            .start();
    if (!p.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new AssertionError(String.join(" ", line) + " timed out");
    }
    String text = Files.readString(output, StandardCharsets.UTF_8);
    assertThat(p.exitValue()).as(String.join(" ", line) + ": " + text).isZero();
    return text;
  }
}
