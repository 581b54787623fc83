package dev.fvdisk.bench;

import dev.fvdisk.engine.io.DirectBufferPool;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Drives a {@link BlockTarget} with one scenario: {@code callers} platform threads take operation
 * indexes from one shared counter, so with many callers the offsets are still issued in the order
 * {@link Offsets} gives, as a queue of that depth would issue them.
 */
final class Workload {

  private static final ThreadMXBean THREADS = ManagementFactory.getThreadMXBean();

  private Workload() {}

  static RunResult run(BlockTarget target, Scenario scenario, Offsets offsets) throws Exception {
    Pattern pattern = scenario.pattern();
    long opCount = scenario.opCount();
    AtomicLong nextOp = new AtomicLong();
    AtomicLong cpuNanos = new AtomicLong();
    // One slot per operation: each thread writes only the slots of the indexes it took.
    long[] latencyNanos = new long[Math.toIntExact(opCount)];
    AtomicReference<Throwable> failure = new AtomicReference<>();
    CountDownLatch ready = new CountDownLatch(scenario.callers());
    CountDownLatch go = new CountDownLatch(1);
    List<Thread> threads = new ArrayList<>();
    for (int t = 0; t < scenario.callers(); t++) {
      // Direct buffers: the channel hands them to the kernel without a copy of its own.
      // Page-aligned
      // ones, because the kernel copies to and from the page cache up to 1.8 times faster for 1 MiB
      // requests at an aligned address on this machine, and qemu-img aligns its buffers too.
      ByteBuffer buffer = alignedDirectBuffer(pattern.ioBytes);
      byte[] content = new byte[pattern.ioBytes];
      new Random(t).nextBytes(content);
      buffer.put(content).clear();
      Thread thread =
          new Thread(
              () -> {
                ready.countDown();
                try {
                  go.await();
                  long cpuStart = THREADS.getCurrentThreadCpuTime();
                  for (long i; (i = nextOp.getAndIncrement()) < opCount; ) {
                    long offset = offsets.offsetBytes(i);
                    buffer.clear();
                    long start = System.nanoTime();
                    if (pattern.write) {
                      target.write(offset, buffer);
                      if (scenario.durable()) {
                        target.flush();
                      }
                    } else {
                      target.read(offset, buffer);
                    }
                    latencyNanos[(int) i] = System.nanoTime() - start;
                  }
                  cpuNanos.addAndGet(THREADS.getCurrentThreadCpuTime() - cpuStart);
                } catch (Throwable e) {
                  failure.compareAndSet(null, e);
                  // Let the other threads stop early instead of finishing a failed run.
                  nextOp.set(opCount);
                }
              },
              "bench-caller-" + t);
      thread.start();
      threads.add(thread);
    }
    ready.await();
    long start = System.nanoTime();
    go.countDown();
    for (Thread thread : threads) {
      thread.join();
    }
    long elapsed = System.nanoTime() - start;
    Throwable error = failure.get();
    if (error != null) {
      throw new IOException(scenario.label() + " failed: " + error, error);
    }
    Arrays.sort(latencyNanos);
    return new RunResult(
        opCount,
        opCount * pattern.ioBytes,
        elapsed,
        percentile(latencyNanos, 0.50),
        percentile(latencyNanos, 0.99),
        cpuNanos.get());
  }

  /**
   * A direct buffer of exactly {@code bytes} starting on a page boundary, made the way the engine
   * makes its own, so the harness moves data through the same kind of buffer as the service.
   */
  static ByteBuffer alignedDirectBuffer(int bytes) {
    return new DirectBufferPool(bytes, 0).acquire();
  }

  private static long percentile(long[] sorted, double fraction) {
    int index = (int) Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1);
    return sorted[Math.max(0, index)];
  }
}
