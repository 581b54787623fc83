package dev.fvdisk.web;

import static org.assertj.core.api.Assertions.assertThat;

import dev.fvdisk.testing.QemuImg;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * QEMU as a real client: its HTTP block driver opens with HEAD and reads with single Range
 * requests, on the main port and on the data port alike. Needs qemu-img with the curl block driver
 * (Debian: qemu-utils and qemu-block-extra); skipped where it is missing. Every run is under a
 * timeout, and with {@code -m 1}, because QEMU 7.2's driver can stall with several reads in flight.
 */
class QemuInteropIntegrationTest extends ApiTestSupport {

  @Test
  void qemu_img_reads_exactly_the_bytes_written_and_the_virtual_size(@TempDir Path work)
      throws Exception {
    QemuImg.assumeAvailable();
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
    // The main port, and the data port beside it: QEMU must get the same disk from both.
    for (int listening : new int[] {port, dataPort.port()}) {
      String url = "http://localhost:" + listening + IMAGES + "/" + name + "/data";

      String info = QemuImg.run(work, "qemu-img", "info", "--output=json", url);
      assertThat(info).as(url).contains("\"virtual-size\": " + size);

      Path out = work.resolve("out-" + listening + ".raw");
      QemuImg.run(
          work, "qemu-img", "convert", "-m", "1", "-f", "raw", "-O", "raw", url, out.toString());
      assertThat(Files.size(out)).as(url).isEqualTo(size);
      assertThat(Files.readAllBytes(out)).as(url).isEqualTo(expected);
    }
  }
}
