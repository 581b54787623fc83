package dev.fvdisk.service;

import dev.fvdisk.engine.CompactionStep;
import dev.fvdisk.engine.Image;
import dev.fvdisk.engine.ImageClosedException;
import dev.fvdisk.engine.ImageStats;
import java.io.IOException;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Lock;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Background compaction: gives the space of chunks freed by zeroing back to the file system while
 * the service runs, instead of only when an image closes.
 *
 * <p>Four times a second one thread looks at the open writable images that have free chunks and
 * have been quiet for the policy's period. For each it makes the image's writes durable (only
 * durably mapped chunks can move), then asks the engine for one {@linkplain Image#compact step},
 * which moves chunks from the end of the file into free slots nearer its start and cuts the file.
 * The bytes moved per tick, over all images, stay within the policy's rate, so compaction never
 * takes the disk from clients for long; an image that gets busy again waits for the next quiet
 * period. An image where a step found nothing to move rests for {@link #REST_NANOS}.
 *
 * <p>A step holds the image entry's lock shared, like a client call, and only ever tries for it: a
 * delete, a read-only mark or a check that holds or waits for it is never held up by more than the
 * step already running, and an entry that was retired meanwhile is skipped.
 */
final class Compactor implements AutoCloseable {

  private static final Logger log = LoggerFactory.getLogger(Compactor.class);

  static final long TICK_MILLIS = 250;

  /** How long an image where a step did nothing, or failed, is left alone. */
  static final long REST_NANOS = TimeUnit.SECONDS.toNanos(30);

  private final CompactionPolicy policy;
  private final Supplier<List<OpenImage>> images;
  private final ImageServiceObserver observer;
  private final Map<OpenImage, Long> restingUntil = new HashMap<>();
  private final ScheduledExecutorService thread;

  Compactor(
      CompactionPolicy policy, Supplier<List<OpenImage>> images, ImageServiceObserver observer) {
    this.policy = policy;
    this.images = images;
    this.observer = observer;
    this.thread =
        Executors.newSingleThreadScheduledExecutor(
            task -> {
              Thread t = new Thread(task, "fvdisk-compaction");
              t.setDaemon(true);
              t.setPriority(Thread.MIN_PRIORITY);
              return t;
            });
  }

  void start() {
    thread.scheduleWithFixedDelay(this::tick, TICK_MILLIS, TICK_MILLIS, TimeUnit.MILLISECONDS);
  }

  /** One pass over the open images; runs on the compaction thread only. */
  void tick() {
    try {
      long budget = Math.max(1, policy.maxBytesPerSecond() * TICK_MILLIS / 1000);
      List<OpenImage> open = images.get();
      restingUntil.keySet().retainAll(open);
      for (OpenImage entry : open) {
        if (budget <= 0) {
          return;
        }
        budget -= compactOne(entry, budget);
      }
    } catch (RuntimeException e) {
      // A scheduled task that throws is never run again; log it and carry on at the next tick.
      log.error("Compaction pass failed", e);
    }
  }

  /** Makes one step in {@code entry} when it is due; returns the bytes moved. */
  private long compactOne(OpenImage entry, long budget) {
    Image image = entry.image();
    Long rest = restingUntil.get(entry);
    if (rest != null && System.nanoTime() - rest < 0) {
      return 0;
    }
    if (!image.isWritable() || image.isFailed()) {
      return 0;
    }
    ImageStats stats = image.stats();
    if (stats.freeChunks() == 0 || image.nanosSinceClientIo() < policy.quietPeriod().toNanos()) {
      return 0;
    }
    Lock lock = entry.lock().readLock();
    if (!lock.tryLock()) {
      return 0;
    }
    try {
      if (entry.isRetired() || entry.image() != image) {
        return 0;
      }
      image.flush();
      int maxChunks = (int) Math.max(1, Math.min(1024, budget / stats.chunkSizeBytes()));
      CompactionStep step = image.compact(maxChunks);
      long movedBytes = (long) step.movedChunks() * stats.chunkSizeBytes();
      if (step.didWork()) {
        restingUntil.remove(entry);
        observer.compacted(entry.name(), movedBytes, step.releasedBytes());
      } else {
        restingUntil.put(entry, System.nanoTime() + REST_NANOS);
      }
      return movedBytes;
    } catch (ImageClosedException e) {
      // Deleted or reopened meanwhile: nothing to do for this entry.
      return 0;
    } catch (IOException | RuntimeException e) {
      restingUntil.put(entry, System.nanoTime() + REST_NANOS);
      log.warn("Compacting image {} failed: {}", entry.name(), e.toString());
      observer.compactionFailed(entry.name());
      return 0;
    } finally {
      lock.unlock();
    }
  }

  /**
   * Stops the thread, waiting for a step in progress to end, so images can close after it. Not by
   * interrupting it: an interrupt during file I/O would close the image's file channel.
   */
  @Override
  public void close() {
    thread.shutdown();
    try {
      if (!thread.awaitTermination(30, TimeUnit.SECONDS)) {
        log.warn("A compaction step was still running after 30 s; closing the images anyway");
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
