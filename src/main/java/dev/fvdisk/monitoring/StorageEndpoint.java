package dev.fvdisk.monitoring;

import dev.fvdisk.service.ImageService;
import dev.fvdisk.service.ImageUsage;
import dev.fvdisk.service.StorageSnapshot;
import java.util.List;
import org.springframework.boot.actuate.endpoint.annotation.Endpoint;
import org.springframework.boot.actuate.endpoint.annotation.ReadOperation;
import org.springframework.stereotype.Component;

/**
 * {@code /actuator/storage}: used, available and provisioned bytes and leaked chunks in total and
 * per image. The field names are the contract's; nothing else is added, so clients can rely on the
 * shape.
 */
@Component
@Endpoint(id = "storage")
public class StorageEndpoint {

  private final ImageService service;

  public StorageEndpoint(ImageService service) {
    this.service = service;
  }

  @ReadOperation
  public StorageReport storage() {
    StorageSnapshot snapshot = service.storageSnapshot();
    return new StorageReport(
        snapshot.usedBytes(),
        snapshot.availableBytes(),
        snapshot.provisionedBytes(),
        snapshot.leakedChunks(),
        snapshot.images().stream().map(StorageEndpoint::report).toList());
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
   */
  public record StorageReport(
      long usedBytes,
      long availableBytes,
      long provisionedBytes,
      long leakedChunks,
      List<ImageReport> images) {}

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
