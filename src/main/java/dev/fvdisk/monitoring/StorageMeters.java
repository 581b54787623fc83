package dev.fvdisk.monitoring;

import dev.fvdisk.service.ImageService;
import dev.fvdisk.service.ImageUsage;
import dev.fvdisk.service.StorageSnapshot;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.binder.BaseUnits;
import io.micrometer.core.instrument.binder.MeterBinder;
import java.util.function.ToDoubleFunction;
import org.springframework.stereotype.Component;

/**
 * The totals, without tags: used, available and provisioned bytes, leaked chunks, and the images
 * that are open or failed. Each reads a fresh snapshot when scraped; a snapshot costs counters and
 * one free-space query, so there is nothing to cache.
 */
@Component
public class StorageMeters implements MeterBinder {

  private final ImageService service;

  public StorageMeters(ImageService service) {
    this.service = service;
  }

  @Override
  public void bindTo(MeterRegistry registry) {
    gauge(
        registry,
        "fvdisk.storage.used",
        "Bytes that chunks of open images occupy",
        true,
        s -> s.usedBytes());
    gauge(
        registry,
        "fvdisk.storage.available",
        "Bytes writes can still allocate: free space above the health threshold, capped by what"
            + " remains of the storage quota",
        true,
        StorageSnapshot::availableBytes);
    gauge(
        registry,
        "fvdisk.storage.provisioned",
        "Sum of the virtual sizes of open images",
        true,
        StorageSnapshot::provisionedBytes);
    gauge(
        registry,
        "fvdisk.chunks.leaked",
        "Chunks found leaked after recovery and not yet reused or reclaimed",
        false,
        StorageSnapshot::leakedChunks);
    gauge(
        registry,
        "fvdisk.images.open",
        "Images open in the registry",
        false,
        s -> s.images().size());
    gauge(
        registry,
        "fvdisk.prefetch.waiting.for.space",
        "Clones whose prefetching is paused until the quota or the file system has room again",
        false,
        s -> s.images().stream().filter(ImageUsage::prefetchWaitingForSpace).count());
    gauge(
        registry,
        "fvdisk.images.failed",
        "Images that failed to open or latched after a failed flush; they serve no writes",
        false,
        s -> s.failedImages().size() + s.latchedImages().size());
  }

  private void gauge(
      MeterRegistry registry,
      String name,
      String description,
      boolean bytes,
      ToDoubleFunction<StorageSnapshot> value) {
    Gauge.builder(name, service, s -> value.applyAsDouble(s.storageSnapshot()))
        .description(description)
        .baseUnit(bytes ? BaseUnits.BYTES : null)
        .strongReference(true)
        .register(registry);
  }
}
