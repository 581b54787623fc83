package dev.fvdisk.testing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/** Runs QEMU's {@code qemu-img} for the interoperability tests, each call under a timeout. */
public final class QemuImg {

  private static final long TIMEOUT_SECONDS = 120;

  private QemuImg() {}

  /**
   * Skips the calling test where qemu-img is missing, except in CI: {@code .ci/run} installs QEMU
   * and sets {@code FVDISK_REQUIRE_QEMU}, and there a missing qemu-img fails the test instead.
   */
  public static void assumeAvailable() {
    boolean available = available();
    if (System.getenv("FVDISK_REQUIRE_QEMU") != null) {
      assertThat(available).as("FVDISK_REQUIRE_QEMU is set but qemu-img cannot run").isTrue();
    }
    assumeTrue(available, "qemu-img is not installed");
  }

  private static boolean available() {
    try {
      Process p = new ProcessBuilder("qemu-img", "--version").redirectErrorStream(true).start();
      p.getInputStream().readAllBytes();
      return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
    } catch (IOException | InterruptedException e) {
      return false;
    }
  }

  /** Runs {@code command} in {@code work}; asserts it exits 0 in time and returns its output. */
  public static String run(Path work, String... command) throws Exception {
    Path output = work.resolve("qemu-output.txt");
    Process p =
        new ProcessBuilder(command)
            .directory(work.toFile())
            .redirectErrorStream(true)
            .redirectOutput(output.toFile())
            .start();
    if (!p.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new AssertionError(String.join(" ", command) + " timed out");
    }
    String text = Files.readString(output, StandardCharsets.UTF_8);
    assertThat(p.exitValue()).as(String.join(" ", command) + ": " + text).isZero();
    return text;
  }
}
