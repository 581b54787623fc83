package dev.fvdisk.testing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/**
 * What booting a {@link TinyLinux} guest needs: QEMU's system emulator ({@code qemu-system-x86_64},
 * Debian's {@code qemu-system-x86}), a kernel with its modules ({@code linux-image-amd64}), a
 * statically linked busybox ({@code busybox-static}) and e2fsprogs' {@code mke2fs}, {@code debugfs}
 * and {@code e2fsck}.
 */
public final class GuestTools {

  /** Where Debian's busybox-static puts busybox. */
  public static final Path BUSYBOX = Path.of("/bin/busybox");

  private GuestTools() {}

  private record Probe(String missing, BooleanSupplier available) {}

  /**
   * Skips the calling test where something is missing, except in CI: {@code .ci/run} installs the
   * packages and sets {@code FVDISK_REQUIRE_GUEST}, and there a missing piece fails the test.
   */
  public static void assumeAvailable() {
    List<Probe> probes =
        List.of(
            new Probe(
                "qemu-system-x86_64 cannot run", () -> runs("qemu-system-x86_64", "--version")),
            new Probe("mke2fs cannot run", () -> runs("mke2fs", "-V")),
            new Probe("debugfs cannot run", () -> runs("debugfs", "-V")),
            new Probe("e2fsck cannot run", () -> runs("e2fsck", "-V")),
            new Probe(BUSYBOX + " is missing or not statically linked", GuestTools::staticBusybox),
            new Probe(
                "no kernel in /boot with its modules in /lib/modules",
                () -> TinyLinux.Kernel.installed().isPresent()));
    boolean required = System.getenv("FVDISK_REQUIRE_GUEST") != null;
    for (Probe probe : probes) {
      boolean available = probe.available().getAsBoolean();
      if (required) {
        assertThat(available).as("FVDISK_REQUIRE_GUEST is set but %s", probe.missing()).isTrue();
      }
      assumeTrue(available, probe.missing());
    }
  }

  /** The guest has no C library, so a dynamically linked busybox could not start there. */
  private static boolean staticBusybox() {
    return Files.isExecutable(BUSYBOX)
        && output("ldd", BUSYBOX.toString()).contains("not a dynamic executable");
  }

  private static boolean runs(String... command) {
    try {
      Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
      p.getInputStream().readAllBytes();
      return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
    } catch (IOException | InterruptedException e) {
      return false;
    }
  }

  private static String output(String... command) {
    try {
      Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
      String text = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      return p.waitFor(30, TimeUnit.SECONDS) ? text : "";
    } catch (IOException | InterruptedException e) {
      return "";
    }
  }
}
