package dev.fvdisk.config;

import dev.fvdisk.objectstore.GarbageCounters;
import dev.fvdisk.objectstore.ObjectStore;
import dev.fvdisk.objectstore.PageCache;
import dev.fvdisk.objectstore.S3ObjectStore;
import java.util.concurrent.ExecutorService;

/**
 * The bucket's client, the store images use (the client, measured when monitoring runs), the pool
 * that runs its transfers, and what the open images share: the local cache and the counters of
 * garbage collection; closed together at shutdown.
 */
record BucketConnection(
    S3ObjectStore client,
    ObjectStore store,
    ExecutorService transfers,
    PageCache cache,
    GarbageCounters garbage)
    implements AutoCloseable {

  @Override
  public void close() {
    transfers.shutdown();
    client.close();
  }
}
