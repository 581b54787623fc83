package dev.fvdisk.monitoring;

import dev.fvdisk.service.ImageService;
import dev.fvdisk.service.StorageSnapshot;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.boot.health.contributor.AbstractHealthIndicator;
import org.springframework.boot.health.contributor.Health;
import org.springframework.stereotype.Component;

/**
 * The {@code storage} health component, modelled on Boot's disk-space indicator: DOWN when the data
 * directory is not writable or its free space is below the threshold that writes never use.
 *
 * <p>Images that failed to open or latched after a failed flush are listed in the details but do
 * not take the service DOWN: every other image still serves, and a restart (not a load balancer
 * pulling the instance) is what brings them back.
 */
@Component
public class StorageHealthIndicator extends AbstractHealthIndicator {

  private static final Logger log = LoggerFactory.getLogger(StorageHealthIndicator.class);

  private final ImageService service;

  /** Whether the last probe was UP; the warning is logged on the change, not on every probe. */
  private final AtomicBoolean up = new AtomicBoolean(true);

  public StorageHealthIndicator(ImageService service) {
    super("Storage health check failed");
    this.service = service;
  }

  @Override
  protected void doHealthCheck(Health.Builder builder) {
    StorageSnapshot snapshot = service.storageSnapshot();
    boolean healthy = snapshot.writable() && !snapshot.belowThreshold();
    if (healthy) {
      builder.up();
      if (!up.getAndSet(true)) {
        log.info("Storage of {} is healthy again", snapshot.dataDirectory());
      }
    } else {
      builder.down();
      if (up.getAndSet(false)) {
        log.warn(
            snapshot.writable()
                ? "Free space of {} is below the threshold: {} bytes usable, {} required"
                : "Data directory {} is not writable ({} bytes usable, {} required)",
            snapshot.dataDirectory(),
            snapshot.usableBytes(),
            snapshot.minFreeBytes());
      }
    }
    builder
        .withDetail("path", snapshot.dataDirectory().toString())
        .withDetail("writable", snapshot.writable())
        .withDetail("usedBytes", snapshot.usedBytes())
        .withDetail("availableBytes", snapshot.availableBytes())
        .withDetail("freeBytes", snapshot.usableBytes())
        .withDetail("thresholdBytes", snapshot.minFreeBytes())
        .withDetail("openImages", snapshot.images().size())
        .withDetail("leakedChunks", snapshot.leakedChunks())
        .withDetail("failedImages", snapshot.failedImages())
        .withDetail("latchedImages", snapshot.latchedImages());
  }
}
