package dev.fvdisk.bench;

import dev.fvdisk.engine.Image;
import dev.fvdisk.engine.ImageOptions;
import dev.fvdisk.engine.Images;
import dev.fvdisk.engine.PrefetchStatus;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * How much background prefetching costs a clone's own I/O: the same bursty foreground workload on a
 * fresh clone, with prefetching off and on, alternating, on real files.
 *
 * <p>The foreground is what a VM's disk sees: bursts of 64 random 4 KiB operations (one write in
 * four, write-back) inside the base's range, with 40 ms of quiet between bursts. Prefetching waits
 * for quiet, so it copies between bursts; what this measures is how often a burst's first
 * operations meet a copy still in flight. Prints foreground latency percentiles per mode, their
 * ratios, and how far prefetching got.
 *
 * <p>Run: {@code ./mvnw -B -q -Pbench test -Dbench.main=dev.fvdisk.bench.PrefetchLatencyBench
 * -Dbench.args="[seconds per run] [repetitions]"} (defaults 15 and 2).
 */
public final class PrefetchLatencyBench {

  private static final long BASE_BYTES = 512L << 20;
  private static final int OP_BYTES = 4096;
  private static final int BURST_OPS = 64;
  private static final long QUIET_MILLIS = 40;

  private PrefetchLatencyBench() {}

  public static void main(String[] args) throws Exception {
    int seconds = args.length > 0 ? Integer.parseInt(args[0]) : 15;
    int repetitions = args.length > 1 ? Integer.parseInt(args[1]) : 2;
    Path dir = Files.createDirectories(Path.of("target", "bench-prefetch"));
    Path basePath = dir.resolve("base.fvd");
    Files.deleteIfExists(basePath);
    try (Image base = Images.create(basePath, ImageOptions.builder(BASE_BYTES).build())) {
      SplittableRandom random = new SplittableRandom(1);
      byte[] chunk = new byte[1 << 20];
      for (long at = 0; at < BASE_BYTES; at += chunk.length) {
        random.nextBytes(chunk);
        base.write(at, ByteBuffer.wrap(chunk));
      }
      base.flush();
    }
    Images.setReadOnly(basePath, true);
    long[][] off = new long[repetitions][];
    long[][] on = new long[repetitions][];
    String[] progress = new String[repetitions];
    try (Image base = Images.open(basePath, false)) {
      for (int r = 0; r < repetitions; r++) {
        // Alternate the order, so drift on a shared machine does not favour one mode.
        boolean onFirst = r % 2 == 1;
        for (boolean prefetch :
            onFirst ? new boolean[] {true, false} : new boolean[] {false, true}) {
          Path clonePath = dir.resolve("clone.fvd");
          Files.deleteIfExists(clonePath);
          try (Image clone =
              Images.create(clonePath, ImageOptions.builder(BASE_BYTES).build(), base, "base")) {
            if (prefetch) {
              clone.setPrefetch(true, 0);
            }
            long[] latencies = foreground(clone, seconds, 7 + r);
            if (prefetch) {
              on[r] = latencies;
              PrefetchStatus status = clone.prefetchStatus();
              progress[r] =
                  String.format(
                      Locale.ROOT,
                      "%s, %.0f%% copied, %d throttle pauses",
                      status.state().name().toLowerCase(Locale.ROOT),
                      100.0 * status.copiedBytes() / status.totalBytes(),
                      status.throttlePauses());
            } else {
              off[r] = latencies;
            }
          }
        }
      }
    }
    print(seconds, off, on, progress);
  }

  /** Runs bursts for {@code seconds}; returns every operation's latency in nanoseconds, sorted. */
  private static long[] foreground(Image clone, int seconds, long seed)
      throws IOException, InterruptedException {
    SplittableRandom random = new SplittableRandom(seed);
    ByteBuffer buffer = ByteBuffer.allocateDirect(OP_BYTES);
    long[] latencies = new long[1 << 20];
    int count = 0;
    long end = System.nanoTime() + seconds * 1_000_000_000L;
    while (System.nanoTime() < end && count + BURST_OPS <= latencies.length) {
      for (int i = 0; i < BURST_OPS; i++) {
        long offset = random.nextLong(BASE_BYTES / OP_BYTES) * OP_BYTES;
        buffer.clear();
        long t0 = System.nanoTime();
        if (i % 4 == 3) {
          clone.write(offset, buffer);
        } else {
          clone.read(offset, buffer);
        }
        latencies[count++] = System.nanoTime() - t0;
      }
      Thread.sleep(QUIET_MILLIS);
    }
    long[] result = Arrays.copyOf(latencies, count);
    Arrays.sort(result);
    return result;
  }

  private static double percentileMicros(long[] sorted, double p) {
    int index = (int) Math.min(sorted.length - 1, Math.ceil(p / 100.0 * sorted.length) - 1);
    return sorted[Math.max(0, index)] / 1000.0;
  }

  private static void print(int seconds, long[][] off, long[][] on, String[] progress) {
    StringBuilder out = new StringBuilder();
    out.append("Foreground 4 KiB operations on a clone of a 512 MiB base, ")
        .append(BURST_OPS)
        .append("-op bursts with ")
        .append(QUIET_MILLIS)
        .append(" ms quiet between, ")
        .append(seconds)
        .append(" s per run\n\n");
    out.append("| rep | prefetch | ops | p50 µs | p99 µs | p99.9 µs | max µs | prefetch state |\n");
    out.append("|--:|---|--:|--:|--:|--:|--:|---|\n");
    for (int r = 0; r < off.length; r++) {
      row(out, r, "off", off[r], "");
      row(out, r, "on", on[r], progress[r]);
      out.append(
          String.format(
              Locale.ROOT,
              "| %d | on ÷ off | | %.2f× | %.2f× | %.2f× | %.2f× | |%n",
              r + 1,
              percentileMicros(on[r], 50) / percentileMicros(off[r], 50),
              percentileMicros(on[r], 99) / percentileMicros(off[r], 99),
              percentileMicros(on[r], 99.9) / percentileMicros(off[r], 99.9),
              (double) on[r][on[r].length - 1] / off[r][off[r].length - 1]));
    }
    System.out.println(out);
  }

  private static void row(StringBuilder out, int r, String mode, long[] sorted, String state) {
    out.append(
        String.format(
            Locale.ROOT,
            "| %d | %s | %d | %.1f | %.1f | %.1f | %.1f | %s |%n",
            r + 1,
            mode,
            sorted.length,
            percentileMicros(sorted, 50),
            percentileMicros(sorted, 99),
            percentileMicros(sorted, 99.9),
            sorted[sorted.length - 1] / 1000.0,
            state));
  }
}
