package dev.fvdisk.objectstore;

import java.util.concurrent.atomic.LongAdder;

/**
 * What the garbage collections of every {@link BucketStorage} of a service did, for monitoring: the
 * storages share one instance through their {@link BucketStorage.Settings}, as they share the
 * {@link PageCache}, so the counts are the service's and outlive the storages that closed.
 *
 * <p>Thread-safe.
 */
public final class GarbageCounters {

  private final LongAdder runs = new LongAdder();
  private final LongAdder deletedObjects = new LongAdder();

  /** Collections started behind a checkpoint, whether or not they found anything to delete. */
  public long runs() {
    return runs.sum();
  }

  /** Records, checkpoints and page objects that collections deleted from the bucket. */
  public long deletedObjects() {
    return deletedObjects.sum();
  }

  void ran() {
    runs.increment();
  }

  void deleted() {
    deletedObjects.increment();
  }
}
