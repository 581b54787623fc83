package dev.fvdisk.config;

import dev.fvdisk.objectstore.ObjectStore;
import dev.fvdisk.objectstore.S3ObjectStore;
import java.util.concurrent.ExecutorService;

/**
 * The bucket's client, the store images use (the client, measured when monitoring runs) and the
 * pool that runs its transfers; closed together at shutdown.
 */
record BucketConnection(S3ObjectStore client, ObjectStore store, ExecutorService transfers)
    implements AutoCloseable {

  @Override
  public void close() {
    transfers.shutdown();
    client.close();
  }
}
