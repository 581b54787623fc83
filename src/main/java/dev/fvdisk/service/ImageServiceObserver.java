package dev.fvdisk.service;

import java.util.function.Supplier;
import org.jspecify.annotations.Nullable;

/**
 * Told what the service does, so monitoring can count it without the service knowing any metrics
 * library. Calls come on the request's thread, some while the registry's monitor is held: they must
 * be quick and must not call back into the service.
 */
public interface ImageServiceObserver {

  /** Observes nothing; the service's default. */
  ImageServiceObserver NONE = new ImageServiceObserver() {};

  /**
   * An image joined the registry: created, or opened at start-up or on first use. {@code usage}
   * reads its current figures from the engine's counters, and gives null once the image has left.
   */
  default void imageOpened(String name, Supplier<@Nullable ImageUsage> usage) {}

  /** An image left the registry: deleted, or closed at shutdown. */
  default void imageClosed(String name) {}

  /** A data read moved {@code bytes} from the engine in {@code nanos} (time in the engine only). */
  default void read(long bytes, long nanos) {}

  /** A data write moved {@code bytes} into the engine in {@code nanos}. */
  default void written(long bytes, long nanos) {}

  /** A flush made earlier writes durable in {@code nanos}. */
  default void flushed(long nanos) {}

  /**
   * Background compaction moved {@code movedBytes} of chunks in image {@code name} and cut its file
   * by {@code releasedBytes}. Comes on the compaction thread.
   */
  default void compacted(String name, long movedBytes, long releasedBytes) {}

  /** A background compaction step in image {@code name} failed (and was logged). */
  default void compactionFailed(String name) {}
}
