package dev.fvdisk.bench;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;

/**
 * {@code qemu-img bench} on a raw file or a qcow2 image, with the cache in write-back mode ({@code
 * -t writeback}: through the page cache, as the engine and the FileChannel baseline go) and the
 * default thread-pool AIO.
 *
 * <p>How the patterns map: callers become the queue depth {@code -d}; offsets come from {@code -o 0
 * -S step} (see {@link Offsets}); durable mode is {@code --flush-interval} equal to the depth,
 * which qemu-img requires to be at least the depth: it drains the in-flight writes, then flushes
 * once, the best a group commit can do. Allocated patterns use an image created with {@code
 * preallocation=falloc} and written in full at preparation; the fresh pattern a new image per
 * repetition (qcow2) or the preallocated file (raw, which has no allocation); the clone pattern a
 * new qcow2 overlay per repetition with the filled image as its backing file.
 */
final class QemuContender implements Contender {

  /** Which image format and cluster size. */
  enum Kind {
    RAW("qemu raw", "raw", 0),
    QCOW2_64K("qcow2 64K", "qcow2", 64 << 10),
    QCOW2_1M("qcow2 1M", "qcow2", 1 << 20);

    final String label;
    final String format;
    final int clusterBytes;

    Kind(String label, String format, int clusterBytes) {
      this.label = label;
      this.format = format;
      this.clusterBytes = clusterBytes;
    }
  }

  private static final java.util.regex.Pattern COMPLETED =
      java.util.regex.Pattern.compile("Run completed in ([0-9.]+) seconds");

  /** A byte value for written data, so no layer could treat the writes as zeros. */
  private static final int WRITE_PATTERN_BYTE = 0x5a;

  private final Kind kind;
  private final Path directory;
  private final long diskBytes;
  private final Path filledPath;
  private int scratchCounter;

  QemuContender(Kind kind, Path directory, long diskBytes) {
    this.kind = kind;
    this.directory = directory;
    this.diskBytes = diskBytes;
    this.filledPath =
        directory.resolve("qemu-" + kind.name().toLowerCase(java.util.Locale.ROOT) + ".img");
  }

  /** Whether {@code qemu-img} can be run; false when it is not installed. */
  static boolean available() {
    try {
      return run(List.of("qemu-img", "--version")).contains("qemu-img");
    } catch (IOException e) {
      return false;
    }
  }

  static String version() throws IOException {
    return run(List.of("qemu-img", "--version")).lines().findFirst().orElse("?");
  }

  @Override
  public String name() {
    return kind.label;
  }

  @Override
  public String imageFor(Scenario scenario) {
    if (kind == Kind.RAW) {
      return "raw file, falloc, written in full";
    }
    String cluster = kind.clusterBytes >> 10 >= 1024 ? "1 MiB" : (kind.clusterBytes >> 10) + " KiB";
    return switch (scenario.pattern()) {
      case SEQ_WRITE_1M_FRESH -> "new qcow2 per repetition, " + cluster + " clusters";
      case CLONE_WRITE_4K -> "new overlay per repetition, " + cluster + " clusters";
      default -> "qcow2, " + cluster + " clusters, falloc, written in full";
    };
  }

  @Override
  public boolean supports(Scenario scenario) {
    return true;
  }

  @Override
  public void prepare() throws IOException {
    List<String> create = new ArrayList<>(List.of("qemu-img", "create", "-q", "-f", kind.format));
    create.add("-o");
    create.add(
        kind == Kind.RAW
            ? "preallocation=falloc"
            : "cluster_size=" + kind.clusterBytes + ",preallocation=falloc");
    create.add(filledPath.toString());
    create.add(Long.toString(diskBytes));
    run(create);
    // Written in full, so reads return data and no later write reaches a file system hole.
    run(
        List.of(
            "qemu-img",
            "bench",
            "-f",
            kind.format,
            "-t",
            "writeback",
            "-w",
            "--pattern=" + WRITE_PATTERN_BYTE,
            "-d",
            "16",
            "-s",
            Integer.toString(1 << 20),
            "-c",
            Long.toString(diskBytes >> 20),
            filledPath.toString()));
    force(filledPath);
  }

  @Override
  public RunResult runOnce(Scenario scenario) throws Exception {
    Path target = filledPath;
    Path scratch = null;
    if (kind != Kind.RAW && scenario.pattern().freshImagePerRepetition) {
      scratch =
          directory.resolve(
              "qemu-"
                  + kind.name().toLowerCase(java.util.Locale.ROOT)
                  + "-scratch-"
                  + scratchCounter++
                  + ".qcow2");
      List<String> create = new ArrayList<>(List.of("qemu-img", "create", "-q", "-f", "qcow2"));
      create.add("-o");
      create.add("cluster_size=" + kind.clusterBytes);
      if (scenario.pattern() == Pattern.CLONE_WRITE_4K) {
        // A name relative to the overlay's directory: qemu resolves it there.
        create.addAll(List.of("-b", filledPath.getFileName().toString(), "-F", kind.format));
      }
      create.add(scratch.toString());
      create.add(Long.toString(diskBytes));
      run(create);
      target = scratch;
    } else {
      force(target);
    }
    try {
      return bench(scenario, target);
    } finally {
      if (scratch != null) {
        Files.deleteIfExists(scratch);
      }
    }
  }

  private RunResult bench(Scenario scenario, Path image) throws IOException {
    Pattern pattern = scenario.pattern();
    Offsets offsets = Offsets.of(pattern, diskBytes);
    List<String> command = new ArrayList<>(List.of("qemu-img", "bench", "-f", kind.format));
    command.addAll(List.of("-t", "writeback"));
    command.addAll(List.of("-c", Long.toString(scenario.opCount())));
    command.addAll(List.of("-d", Integer.toString(scenario.callers())));
    command.addAll(List.of("-s", Integer.toString(pattern.ioBytes)));
    command.addAll(List.of("-o", "0", "-S", Long.toString(offsets.qemuStepBytes())));
    if (pattern.write) {
      command.add("-w");
      command.add("--pattern=" + WRITE_PATTERN_BYTE);
      if (scenario.durable()) {
        command.add("--flush-interval=" + scenario.callers());
      }
    }
    command.add(image.toString());
    String output = run(command);
    Matcher m = COMPLETED.matcher(output);
    if (!m.find()) {
      throw new IOException("no timing in qemu-img bench output: " + output);
    }
    long nanos = Math.max(1, Math.round(Double.parseDouble(m.group(1)) * 1e9));
    return new RunResult(scenario.opCount(), scenario.bytesPerRepetition(), nanos, -1, -1, -1);
  }

  /** Forces a file, so dirty pages of earlier runs are not written back during the next one. */
  private static void force(Path path) throws IOException {
    try (FileChannel channel = FileChannel.open(path, StandardOpenOption.WRITE)) {
      channel.force(true);
    }
  }

  private static String run(List<String> command) throws IOException {
    Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
    String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    try {
      if (!process.waitFor(10, TimeUnit.MINUTES)) {
        process.destroyForcibly();
        throw new IOException("timed out: " + String.join(" ", command));
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      process.destroyForcibly();
      throw new IOException("interrupted: " + String.join(" ", command), e);
    }
    if (process.exitValue() != 0) {
      throw new IOException(
          String.join(" ", command) + " exited with " + process.exitValue() + ": " + output);
    }
    return output;
  }

  @Override
  public void close() throws IOException {
    Files.deleteIfExists(filledPath);
  }
}
