package dev.fvdisk.testing;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * A small Linux guest made from Debian packages on the spot: the installed Debian kernel, an
 * initramfs holding busybox and the modules that reach a virtio disk, and an ext2 root file system
 * of busybox and an init script. {@link #boot} runs it under QEMU's TCG, so no KVM is needed. Check
 * for the tools first with {@link GuestTools#assumeAvailable}.
 */
public final class TinyLinux {

  /** Block size of the root file systems {@link #rootFileSystem} makes. */
  public static final int FILE_SYSTEM_BLOCK_BYTES = 4096;

  /**
   * What the initramfs loads, dependencies aside (they come from {@code modules.dep}): the PCI
   * transport and block driver of virtio disks, and ext4, which mounts ext2. ext4 asks the crypto
   * API for crc32c when it mounts, a soft dependency that {@code modules.dep} does not list.
   */
  private static final List<String> ROOT_DISK_MODULES =
      List.of("crc32c_generic", "virtio_pci", "virtio_blk", "ext4");

  private static final long BOOT_TIMEOUT_SECONDS = 120;

  private TinyLinux() {}

  /** A kernel in {@code /boot} and its modules in {@code /lib/modules/<release>}. */
  public record Kernel(String release, Path vmlinuz, Path modulesDir) {

    /** The installed kernel with the highest release name, if any has its modules installed. */
    public static Optional<Kernel> installed() {
      try (Stream<Path> boot = Files.list(Path.of("/boot"))) {
        return boot.map(p -> p.getFileName().toString())
            .filter(name -> name.startsWith("vmlinuz-"))
            .map(name -> name.substring("vmlinuz-".length()))
            .sorted(Collections.reverseOrder())
            .map(
                release ->
                    new Kernel(
                        release,
                        Path.of("/boot", "vmlinuz-" + release),
                        Path.of("/lib/modules", release)))
            .filter(k -> Files.isReadable(k.vmlinuz()))
            .filter(k -> Files.isReadable(k.modulesDir().resolve("modules.dep")))
            .findFirst();
      } catch (IOException e) {
        return Optional.empty();
      }
    }

    /**
     * The module files for {@code names} and everything they depend on, in an order that loads each
     * after its dependencies; modules built into the kernel are left out.
     */
    List<Path> modulesToLoad(List<String> names) throws IOException {
      Map<String, List<String>> dependencies = new HashMap<>();
      Map<String, String> pathByName = new HashMap<>();
      for (String line : Files.readAllLines(modulesDir.resolve("modules.dep"))) {
        int colon = line.indexOf(':');
        String path = line.substring(0, colon);
        String rest = line.substring(colon + 1).trim();
        dependencies.put(path, rest.isEmpty() ? List.of() : List.of(rest.split(" ")));
        pathByName.put(moduleName(path), path);
      }
      Set<String> builtIn = new HashSet<>();
      for (String path : Files.readAllLines(modulesDir.resolve("modules.builtin"))) {
        builtIn.add(moduleName(path));
      }
      LinkedHashSet<String> ordered = new LinkedHashSet<>();
      for (String name : names) {
        if (builtIn.contains(name)) {
          continue;
        }
        String path = pathByName.get(name);
        assertThat(path).as("module %s of kernel %s", name, release).isNotNull();
        addWithDependencies(path, dependencies, ordered);
      }
      return ordered.stream().map(modulesDir::resolve).toList();
    }

    private static void addWithDependencies(
        String path, Map<String, List<String>> dependencies, LinkedHashSet<String> ordered) {
      if (ordered.contains(path)) {
        return;
      }
      // modules.dep lists every module a module needs, the ones needed last first (modprobe
      // loads them from the end); the recursion orders them whatever the listing.
      List<String> needed = new ArrayList<>(dependencies.get(path));
      Collections.reverse(needed);
      for (String dependency : needed) {
        addWithDependencies(dependency, dependencies, ordered);
      }
      ordered.add(path);
    }

    /** {@code kernel/fs/ext4/ext4.ko.xz} is {@code ext4}; names use _ where files may use -. */
    private static String moduleName(String path) {
      String file = path.substring(path.lastIndexOf('/') + 1);
      return file.substring(0, file.indexOf(".ko")).replace('-', '_');
    }
  }

  /**
   * Writes an ext2 file system of {@code sizeBytes} to {@code image}: busybox in {@code /bin} with
   * a link for each of its programs, {@code init} as {@code /sbin/init}, empty {@code /dev}, {@code
   * /proc}, {@code /sys} and {@code /root}, and {@code files} (path without the leading slash to
   * content). Made by {@code mke2fs -d}, so nothing is mounted on the host.
   */
  public static void rootFileSystem(
      Path work, Path image, long sizeBytes, String init, Map<String, byte[]> files)
      throws Exception {
    Path tree = Files.createDirectories(work.resolve("rootfs"));
    for (String dir : List.of("bin", "sbin", "dev", "proc", "sys", "root")) {
      Files.createDirectories(tree.resolve(dir));
    }
    Files.copy(GuestTools.BUSYBOX, tree.resolve("bin/busybox"));
    for (String program : QemuImg.run(work, GuestTools.BUSYBOX.toString(), "--list").split("\n")) {
      if (!program.isBlank() && !program.equals("busybox")) {
        Files.createSymbolicLink(tree.resolve("bin").resolve(program.strip()), Path.of("busybox"));
      }
    }
    writeExecutable(tree.resolve("sbin/init"), init.getBytes(StandardCharsets.UTF_8));
    for (Map.Entry<String, byte[]> file : files.entrySet()) {
      Path path = tree.resolve(file.getKey());
      Files.createDirectories(path.getParent());
      Files.write(path, file.getValue());
    }
    // ext2 has no journal, so what the guest syncs lies in place and debugfs reads it as it is.
    QemuImg.run(
        work,
        "mke2fs",
        "-q",
        "-F",
        "-t",
        "ext2",
        "-b",
        Integer.toString(FILE_SYSTEM_BLOCK_BYTES),
        "-d",
        tree.toString(),
        image.toString(),
        (sizeBytes / 1024) + "k");
  }

  /**
   * Writes an initramfs that loads the modules for a virtio disk, mounts {@code /dev/vda}
   * read-write and switches to it, running its {@code /sbin/init}.
   */
  public static Path initramfs(Path work, Kernel kernel) throws Exception {
    List<String> moduleNames = new ArrayList<>();
    Path archive = work.resolve("initramfs.cpio");
    try (NewcArchive cpio = new NewcArchive(archive)) {
      for (String dir : List.of("bin", "dev", "proc", "sys", "newroot", "modules")) {
        cpio.directory(dir);
      }
      cpio.file("bin/busybox", 0755, Files.readAllBytes(GuestTools.BUSYBOX));
      for (Path module : kernel.modulesToLoad(ROOT_DISK_MODULES)) {
        String name = Kernel.moduleName(module.toString());
        cpio.file("modules/" + name + ".ko", 0644, uncompressed(work, module));
        moduleNames.add(name);
      }
      String init =
          """
          #!/bin/busybox sh
          set -ex
          /bin/busybox mount -t devtmpfs devtmpfs /dev
          for module in %s; do
            /bin/busybox insmod /modules/$module.ko
          done
          # The disk shows up once virtio_blk has probed it, which may trail insmod a little.
          tries=0
          while [ ! -b /dev/vda ] && [ $tries -lt 100 ]; do
            /bin/busybox sleep 0.1
            tries=$((tries + 1))
          done
          /bin/busybox mount -t ext2 /dev/vda /newroot
          /bin/busybox umount /dev
          exec /bin/busybox switch_root /newroot /sbin/init
          """
              .formatted(String.join(" ", moduleNames));
      cpio.file("init", 0755, init.getBytes(StandardCharsets.UTF_8));
    }
    return archive;
  }

  /** Some kernels ship compressed modules, and busybox's insmod may not read those. */
  private static byte[] uncompressed(Path work, Path module) throws Exception {
    String file = module.getFileName().toString();
    if (file.endsWith(".ko")) {
      return Files.readAllBytes(module);
    }
    String tool = file.endsWith(".ko.xz") ? "xz" : file.endsWith(".ko.zst") ? "zstd" : null;
    assertThat(tool).as("a module compressed in an unknown way: %s", module).isNotNull();
    // Both tools write x.ko next to x.ko.xz or x.ko.zst.
    Files.copy(module, work.resolve(file));
    QemuImg.run(work, tool, "-d", "-q", file);
    return Files.readAllBytes(work.resolve(file.substring(0, file.lastIndexOf('.'))));
  }

  /**
   * Boots {@code kernel} with {@code initramfs} and the raw disks at {@code driveUris} (the first
   * is {@code /dev/vda}, the next {@code /dev/vdb} and so on), waits for the guest to power off and
   * returns what it wrote to its serial console. A panic reboots, which ends QEMU too. Fails when
   * QEMU fails or the guest is still running after two minutes, with the console in the message.
   */
  public static String boot(Path work, Kernel kernel, Path initramfs, List<String> driveUris)
      throws Exception {
    Path console = work.resolve("console.log");
    List<String> command =
        new ArrayList<>(
            List.of(
                "qemu-system-x86_64",
                "-accel",
                "tcg",
                "-m",
                "256",
                "-nographic",
                "-nodefaults",
                "-no-reboot",
                "-monitor",
                "none",
                "-serial",
                "file:" + console,
                "-kernel",
                kernel.vmlinuz().toString(),
                "-initrd",
                initramfs.toString(),
                "-append",
                "console=ttyS0 panic=-1 quiet"));
    for (String uri : driveUris) {
      command.add("-drive");
      command.add("file=" + uri + ",format=raw,if=virtio,cache=writeback");
    }
    Path output = work.resolve("qemu-system-output.txt");
    Process qemu =
        new ProcessBuilder(command)
            .directory(work.toFile())
            .redirectErrorStream(true)
            .redirectOutput(output.toFile())
            .start();
    if (!qemu.waitFor(BOOT_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
      qemu.destroyForcibly().waitFor();
      throw new AssertionError(
          "the guest was still running after "
              + BOOT_TIMEOUT_SECONDS
              + " s; its console:\n"
              + readIfPresent(console));
    }
    assertThat(qemu.exitValue())
        .as("qemu-system-x86_64: %s\nconsole:\n%s", readIfPresent(output), readIfPresent(console))
        .isZero();
    return readIfPresent(console);
  }

  private static String readIfPresent(Path file) throws IOException {
    // Lenient decoding: the firmware writes escape sequences to the console before Linux starts.
    return Files.exists(file)
        ? new String(Files.readAllBytes(file), StandardCharsets.UTF_8)
        : "(nothing)";
  }

  private static void writeExecutable(Path path, byte[] content) throws IOException {
    Files.write(path, content);
    path.toFile().setExecutable(true, false);
  }
}
