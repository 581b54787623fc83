package dev.fvdisk.monitoring;

import com.fasterxml.jackson.annotation.JsonInclude;
import dev.fvdisk.service.ImageService;
import dev.fvdisk.service.ImageUsage;
import dev.fvdisk.service.StorageSnapshot;
import java.util.List;
import org.jspecify.annotations.Nullable;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.boot.actuate.endpoint.annotation.Endpoint;
import org.springframework.boot.actuate.endpoint.annotation.ReadOperation;
import org.springframework.stereotype.Component;

/**
 * {@code /actuator/storage}: used, available and provisioned bytes and leaked chunks in total and
 * per image, and a {@code bucket} section when the images are kept in a bucket. The other field
 * names are the contract's, and nothing else is added, so clients can rely on the shape.
 */
@Component
@Endpoint(id = "storage")
public class StorageEndpoint {

  private final ImageService service;
  private final @Nullable BucketFigures bucket;

  /**
   * @param bucket present when the back end is a bucket: configuration knows where it is, which the
   *     service does not
   */
  public StorageEndpoint(ImageService service, ObjectProvider<BucketFigures> bucket) {
    this.service = service;
    this.bucket = bucket.getIfAvailable();
  }

  @ReadOperation
  public StorageReport storage() {
    StorageSnapshot snapshot = service.storageSnapshot();
    return new StorageReport(
        snapshot.usedBytes(),
        snapshot.availableBytes(),
        snapshot.provisionedBytes(),
        snapshot.leakedChunks(),
        snapshot.images().stream().map(StorageEndpoint::report).toList(),
        bucket == null ? null : bucket.report());
  }

  private static ImageReport report(ImageUsage usage) {
    return new ImageReport(
        usage.name(),
        usage.provisionedBytes(),
        usage.usedBytes(),
        usage.fileBytes(),
        usage.leakedChunks(),
        usage.journalUsedRatio());
  }

  /**
   * @param usedBytes bytes that chunks of all open images occupy
   * @param availableBytes what writes can still allocate: free space above the health threshold
   * @param provisionedBytes the sum of virtual sizes
   * @param leakedChunks chunks of all open images found leaked and not yet reused or reclaimed
   * @param images per image, sorted by name
   * @param bucket the bucket that keeps the images; absent for local files
   */
  public record StorageReport(
      long usedBytes,
      long availableBytes,
      long provisionedBytes,
      long leakedChunks,
      List<ImageReport> images,
      @JsonInclude(JsonInclude.Include.NON_NULL) @Nullable BucketReport bucket) {}

  /** Reads the {@code bucket} section afresh, from counters; configuration provides it. */
  @FunctionalInterface
  public interface BucketFigures {
    BucketReport report();
  }

  /**
   * Never the access or the secret key.
   *
   * @param endpoint the store's URL
   * @param bucket the bucket's name
   * @param prefix where in the bucket this service keeps its objects
   * @param cacheMaxBytes the bound of the local cache of pages
   * @param cachedBytes local disk the cached pages take now
   * @param dirtyBytes of those, pages with writes not yet forced to the bucket
   * @param cacheHits reads and writes of pages that were cached
   * @param cacheFetches pages fetched from the bucket because they were not
   * @param cacheEvictions clean pages dropped to stay under the bound
   * @param gcRuns garbage collections started behind an image's checkpoint
   * @param gcDeletedObjects records, checkpoints and page objects they deleted
   * @param leases this instance's leases; absent without {@code fvdisk.node-id} (no leases)
   */
  public record BucketReport(
      String endpoint,
      String bucket,
      String prefix,
      long cacheMaxBytes,
      long cachedBytes,
      long dirtyBytes,
      long cacheHits,
      long cacheFetches,
      long cacheEvictions,
      long gcRuns,
      long gcDeletedObjects,
      @JsonInclude(JsonInclude.Include.NON_NULL) @Nullable LeaseReport leases) {}

  /**
   * @param nodeId this instance's {@code fvdisk.node-id}
   * @param held image leases it holds and has not let run out
   * @param takenOver leases it took that another instance held last (run out, or given up at that
   *     one's shutdown)
   * @param lost images it gave up because another instance took their lease
   */
  public record LeaseReport(String nodeId, int held, long takenOver, long lost) {}

  /**
   * @param name the image name
   * @param provisionedBytes virtual size
   * @param usedBytes bytes its chunks occupy
   * @param fileBytes length of its file
   * @param leakedChunks chunks found leaked and not yet reused or reclaimed
   * @param journalUsedRatio journal fill between 0 and 1
   */
  public record ImageReport(
      String name,
      long provisionedBytes,
      long usedBytes,
      long fileBytes,
      long leakedChunks,
      double journalUsedRatio) {}
}
