package dev.fvdisk.service;

import java.io.IOException;
import java.time.Duration;
import org.jspecify.annotations.Nullable;

/**
 * Which service instance serves which image, where several share one bucket: an instance serves an
 * image only while it holds the image's lease, and renews it well before it runs out. The lease is
 * for routing and liveness only; safety comes from the image's log, where an instance that takes an
 * image over fences the one before it.
 *
 * <p>{@link #NONE} is the single instance (local files, or a bucket with no {@code
 * fvdisk.node-id}): it holds every image, always.
 */
interface ImageLeases {

  /**
   * Takes the image's lease for this instance before it opens the image: free, run out, or already
   * this instance's (a restart of the same node).
   *
   * @throws ImageElsewhereException when another instance holds a live lease
   */
  void take(String name) throws IOException;

  /**
   * Whether this instance's lease on the image is fresh enough to serve without asking the store:
   * renewed recently, by its own clock. False after a long pause (a stopped process), when the next
   * request must {@linkplain #renew renew} it first.
   */
  boolean fresh(String name);

  /**
   * Renews the lease this instance holds, publishing {@code descriptor} for other instances'
   * listings (null keeps the last one). False when it is no longer this instance's: another took
   * the image over.
   *
   * @throws IOException when the store does not answer; the lease then stays as it was
   */
  boolean renew(String name, @Nullable ImageDescriptor descriptor) throws IOException;

  /** Gives the lease up (a clean shutdown), so another instance may take the image at once. */
  void release(String name);

  /** Forgets the lease of a deleted image, whose objects (the lease's included) are gone. */
  void forget(String name);

  /**
   * Forgets the lease of an image this instance gave up because another instance took it over, and
   * counts it lost.
   */
  void surrendered(String name);

  /** How often the service renews the leases it holds; null when there is nothing to renew. */
  @Nullable Duration renewalPeriod();

  /** The single instance, which serves every image. */
  ImageLeases NONE =
      new ImageLeases() {
        @Override
        public void take(String name) {}

        @Override
        public boolean fresh(String name) {
          return true;
        }

        @Override
        public boolean renew(String name, @Nullable ImageDescriptor descriptor) {
          return true;
        }

        @Override
        public void release(String name) {}

        @Override
        public void forget(String name) {}

        @Override
        public void surrendered(String name) {}

        @Override
        public @Nullable Duration renewalPeriod() {
          return null;
        }
      };
}
