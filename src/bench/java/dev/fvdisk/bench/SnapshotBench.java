package dev.fvdisk.bench;

import dev.fvdisk.engine.Image;
import dev.fvdisk.engine.ImageOptions;
import dev.fvdisk.engine.Images;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * What a snapshot costs, on real files: how long taking one takes on a 10 GiB image with 1 GiB
 * written, and the rate of 4 KiB random writes into chunks that were written before, without a
 * snapshot (in place) and right after one (each write the first into its chunk, so it gives the
 * chunk a new slot holding a partial version), without and with the flush that follows them. The
 * same run times {@code qemu-img snapshot -c} on a qcow2 image holding the same 1 GiB, when
 * qemu-img is installed, and the raw baselines of both write patterns on a plain file of the same
 * file system: 4 KiB overwrites of a written GiB, and 4 KiB writes each into fresh file space a
 * chunk apart past the end (where a write after a snapshot lands).
 *
 * <p>Run: {@code ./mvnw -B -q -Pbench test -Dbench.main=dev.fvdisk.bench.SnapshotBench
 * -Dbench.args="[repetitions] [writes]"} (defaults 7 and 2000, at most one write per chunk written,
 * 1,024). Writes are write-back (no flush per write), one caller; each rate is the median of the
 * repetitions, each over the chunks in a new random order.
 */
public final class SnapshotBench {

  private static final long SIZE = 10L << 30;
  private static final int WARM_UP_ROUNDS = 10;
  private static final long WRITTEN = 1L << 30;
  private static final int PIECE = 1 << 20;
  private static final int SMALL = 4096;

  private SnapshotBench() {}

  public static void main(String[] args) throws Exception {
    int repetitions = args.length > 0 ? Integer.parseInt(args[0]) : 7;
    int writes = args.length > 1 ? Integer.parseInt(args[1]) : 2000;
    Path dir = Files.createDirectories(Path.of("target", "bench-work", "snapshot"));
    Path path = dir.resolve("snap.fvd");
    Files.deleteIfExists(path);
    StringBuilder out = new StringBuilder();
    double[] raw = rawBaselines(dir, repetitions);
    try (Image image = Images.create(path, ImageOptions.builder(SIZE).build())) {
      fill(image);
      int chunk = image.chunkSizeBytes();
      long chunks = WRITTEN / chunk;
      // Each repetition writes into distinct chunks in a new random order: after each snapshot
      // every chunk is shared again, so each write is the first into its chunk since it.
      writes = (int) Math.min(writes, chunks);
      List<Long> snapshotNanos = new ArrayList<>();
      double[] plain = new double[repetitions];
      double[] afterSnapshot = new double[repetitions];
      double[] plainFlushed = new double[repetitions];
      double[] afterSnapshotFlushed = new double[repetitions];
      SplittableRandom random = new SplittableRandom(42);
      // Unmeasured rounds first, so the write path is compiled before either rate is taken.
      for (int r = 0; r < WARM_UP_ROUNDS; r++) {
        writeNanos(image, shuffledChunks(chunks, random), writes, chunk, random);
        image.flush();
      }
      // In place first, before any snapshot exists: chunks written before, never shared.
      for (int r = 0; r < repetitions; r++) {
        long nanos = writeNanos(image, shuffledChunks(chunks, random), writes, chunk, random);
        long flushStart = System.nanoTime();
        image.flush();
        plain[r] = writes / (nanos / 1e9);
        plainFlushed[r] = writes / ((nanos + System.nanoTime() - flushStart) / 1e9);
      }
      for (int r = 0; r < repetitions; r++) {
        long start = System.nanoTime();
        image.createSnapshot("s" + r);
        snapshotNanos.add(System.nanoTime() - start);
        // Right after the snapshot: every write the first into its chunk since it was taken.
        long nanos = writeNanos(image, shuffledChunks(chunks, random), writes, chunk, random);
        long flushStart = System.nanoTime();
        image.flush();
        afterSnapshot[r] = writes / (nanos / 1e9);
        afterSnapshotFlushed[r] = writes / ((nanos + System.nanoTime() - flushStart) / 1e9);
      }
      out.append(
          String.format(
              Locale.ROOT,
              "Snapshot of a %d GiB image with %d GiB written (chunks of %d KiB), %d repetitions:%n",
              SIZE >> 30,
              WRITTEN >> 30,
              chunk >> 10,
              repetitions));
      out.append(
          String.format(
              Locale.ROOT,
              "- taking a snapshot: median %.2f ms (min %.2f, max %.2f)%n",
              median(snapshotNanos) / 1e6,
              snapshotNanos.stream().mapToLong(Long::longValue).min().orElse(0) / 1e6,
              snapshotNanos.stream().mapToLong(Long::longValue).max().orElse(0) / 1e6));
      double plainRate = median(plain);
      double afterRate = median(afterSnapshot);
      out.append(
          String.format(
              Locale.ROOT,
              "- %d random 4 KiB writes into written chunks: %.0f writes/s in place, %.0f writes/s"
                  + " right after a snapshot (%.2fx)%n",
              writes,
              plainRate,
              afterRate,
              afterRate / plainRate));
      out.append(
          String.format(
              Locale.ROOT,
              "- the same with the flush after them counted: %.0f writes/s in place, %.0f writes/s"
                  + " right after a snapshot (%.2fx)%n",
              median(plainFlushed),
              median(afterSnapshotFlushed),
              median(afterSnapshotFlushed) / median(plainFlushed)));
      out.append(
          String.format(
              Locale.ROOT,
              "- raw FileChannel baselines on the same file system, 4 KiB writes one per chunk:"
                  + " overwriting a written GiB %.0f writes/s (%.0f with the force), into fresh"
                  + " space a chunk apart past the end %.0f writes/s (%.0f with the force)%n",
              raw[0],
              raw[1],
              raw[2],
              raw[3]));
      out.append(
          String.format(
              Locale.ROOT,
              "- fvdisk against the raw pattern it performs: in place %.2fx raw overwrites (%.2fx"
                  + " with the flush), after a snapshot %.2fx raw fresh writes (%.2fx with the"
                  + " flush)%n",
              plainRate / raw[0],
              median(plainFlushed) / raw[1],
              afterRate / raw[2],
              median(afterSnapshotFlushed) / raw[3]));
    }
    out.append(qemuSnapshot(dir, repetitions));
    System.out.print(out);
    Files.deleteIfExists(path);
  }

  private static void fill(Image image) throws IOException {
    ByteBuffer piece = ByteBuffer.allocate(PIECE);
    SplittableRandom random = new SplittableRandom(7);
    for (long at = 0; at < WRITTEN; at += PIECE) {
      for (int i = 0; i < PIECE; i += 8) {
        piece.putLong(i, random.nextLong());
      }
      image.write(at, piece.clear());
    }
    image.flush();
  }

  private static long[] shuffledChunks(long chunks, SplittableRandom random) {
    long[] order = new long[(int) chunks];
    for (int i = 0; i < order.length; i++) {
      order[i] = i;
    }
    for (int i = order.length - 1; i > 0; i--) {
      int j = random.nextInt(i + 1);
      long t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
    return order;
  }

  /**
   * Nanoseconds {@code count} 4 KiB writes take, one into each of the first chunks of {@code
   * order}.
   */
  private static long writeNanos(
      Image image, long[] order, int count, int chunk, SplittableRandom random) throws IOException {
    ByteBuffer data = ByteBuffer.allocate(SMALL);
    long start = System.nanoTime();
    for (int i = 0; i < count; i++) {
      long offset = order[i] * chunk + (long) random.nextInt(chunk / SMALL) * SMALL;
      data.clear().putLong(0, offset);
      image.write(offset, data);
    }
    return System.nanoTime() - start;
  }

  private static double median(double[] values) {
    double[] sorted = values.clone();
    Arrays.sort(sorted);
    return sorted[sorted.length / 2];
  }

  private static long median(List<Long> values) {
    List<Long> sorted = new ArrayList<>(values);
    sorted.sort(null);
    return sorted.get(sorted.size() / 2);
  }

  /**
   * The two write patterns on a plain file through {@link FileChannel}, same sizes and counts: 4
   * KiB writes one into each of 1,024 random chunks of a written GiB (in place), and 4 KiB writes
   * each into a fresh chunk-sized stretch past the file's end (as a write after a snapshot goes to
   * a new slot); the medians of the rates without and with the force after them, in that order.
   */
  private static double[] rawBaselines(Path dir, int repetitions) throws IOException {
    Path raw = dir.resolve("raw.bin");
    Files.deleteIfExists(raw);
    int chunk = 1 << 20;
    int count = (int) (WRITTEN / chunk);
    double[] inPlace = new double[repetitions];
    double[] inPlaceForced = new double[repetitions];
    double[] fresh = new double[repetitions];
    double[] freshForced = new double[repetitions];
    SplittableRandom random = new SplittableRandom(43);
    try (FileChannel channel =
        FileChannel.open(
            raw,
            StandardOpenOption.CREATE_NEW,
            StandardOpenOption.READ,
            StandardOpenOption.WRITE)) {
      ByteBuffer piece = ByteBuffer.allocate(PIECE);
      for (long at = 0; at < WRITTEN; at += PIECE) {
        for (int i = 0; i < PIECE; i += 8) {
          piece.putLong(i, random.nextLong());
        }
        channel.write(piece.clear(), at);
      }
      channel.force(false);
      long end = WRITTEN;
      ByteBuffer data = ByteBuffer.allocate(SMALL);
      for (int r = -WARM_UP_ROUNDS; r < repetitions; r++) {
        long[] order = shuffledChunks(count, random);
        long start = System.nanoTime();
        for (int i = 0; i < count; i++) {
          long offset = order[i] * chunk + (long) random.nextInt(chunk / SMALL) * SMALL;
          channel.write(data.clear().putLong(0, offset), offset);
        }
        long written = System.nanoTime() - start;
        channel.force(false);
        long forced = System.nanoTime() - start;
        long freshStart = System.nanoTime();
        for (int i = 0; i < count; i++) {
          long offset = end + (long) i * chunk + (long) random.nextInt(chunk / SMALL) * SMALL;
          channel.write(data.clear().putLong(0, offset), offset);
        }
        long freshWritten = System.nanoTime() - freshStart;
        channel.force(false);
        long freshForcedNanos = System.nanoTime() - freshStart;
        end += (long) count * chunk;
        if (r >= 0) {
          inPlace[r] = count / (written / 1e9);
          inPlaceForced[r] = count / (forced / 1e9);
          fresh[r] = count / (freshWritten / 1e9);
          freshForced[r] = count / (freshForcedNanos / 1e9);
        }
      }
    } finally {
      Files.deleteIfExists(raw);
    }
    return new double[] {
      median(inPlace), median(inPlaceForced), median(fresh), median(freshForced)
    };
  }

  /** {@code qemu-img snapshot -c} on a qcow2 image with the same GiB written, if installed. */
  private static String qemuSnapshot(Path dir, int repetitions) throws Exception {
    Path qcow = dir.resolve("snap.qcow2");
    Files.deleteIfExists(qcow);
    if (run("qemu-img", "create", "-q", "-f", "qcow2", qcow.toString(), Long.toString(SIZE)) != 0) {
      return "- qemu-img snapshot -c: qemu-img not available\n";
    }
    run("qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 " + WRITTEN, qcow.toString());
    List<Long> nanos = new ArrayList<>();
    for (int r = 0; r < repetitions; r++) {
      long start = System.nanoTime();
      if (run("qemu-img", "snapshot", "-c", "s" + r, qcow.toString()) != 0) {
        return "- qemu-img snapshot -c failed\n";
      }
      nanos.add(System.nanoTime() - start);
    }
    Files.deleteIfExists(qcow);
    return String.format(
        Locale.ROOT,
        "- qemu-img snapshot -c on qcow2 (same size and data, a process per call): median %.2f ms"
            + " (min %.2f, max %.2f)%n",
        median(nanos) / 1e6,
        nanos.stream().mapToLong(Long::longValue).min().orElse(0) / 1e6,
        nanos.stream().mapToLong(Long::longValue).max().orElse(0) / 1e6);
  }

  private static int run(String... command) throws Exception {
    try {
      Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
      p.getInputStream().transferTo(java.io.OutputStream.nullOutputStream());
      if (!p.waitFor(10, TimeUnit.MINUTES)) {
        p.destroyForcibly();
        return -1;
      }
      return p.exitValue();
    } catch (IOException e) {
      return -1;
    }
  }
}
