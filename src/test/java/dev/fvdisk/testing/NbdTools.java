package dev.fvdisk.testing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The NBD clients of the interoperability tests: libnbd's {@code nbdinfo} and {@code nbdcopy}, its
 * Python module (Debian's {@code python3-libnbd}, so always {@code /usr/bin/python3}), and QEMU's
 * {@code qemu-io} and {@code qemu-img}. Run them with {@link QemuImg#run}.
 */
public final class NbdTools {

  /** Debian's Python, which has the {@code nbd} module; another python3 on PATH may not. */
  public static final String PYTHON = "/usr/bin/python3";

  private NbdTools() {}

  /**
   * Skips the calling test where a tool is missing, except in CI: {@code .ci/run} installs them and
   * sets {@code FVDISK_REQUIRE_NBD_TOOLS}, and there a missing tool fails the test instead.
   */
  public static void assumeAvailable() {
    List<List<String>> probes =
        List.of(
            List.of("nbdinfo", "--version"),
            List.of("nbdcopy", "--version"),
            List.of("qemu-io", "--version"),
            List.of("qemu-img", "--version"),
            List.of(PYTHON, "-c", "import nbd"));
    for (List<String> probe : probes) {
      boolean available = runs(probe);
      if (System.getenv("FVDISK_REQUIRE_NBD_TOOLS") != null) {
        assertThat(available)
            .as("FVDISK_REQUIRE_NBD_TOOLS is set but %s cannot run", String.join(" ", probe))
            .isTrue();
      }
      assumeTrue(available, String.join(" ", probe) + " cannot run; the NBD tools are missing");
    }
  }

  private static boolean runs(List<String> command) {
    try {
      Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
      p.getInputStream().readAllBytes();
      return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
    } catch (IOException | InterruptedException e) {
      return false;
    }
  }
}
