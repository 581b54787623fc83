package dev.fvdisk.monitoring;

import dev.fvdisk.service.ImageServiceObserver;
import dev.fvdisk.service.ImageUsage;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.binder.BaseUnits;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.function.ToDoubleFunction;
import org.jspecify.annotations.Nullable;
import org.springframework.stereotype.Component;

/**
 * Per-image gauges and the data-path timers, fed by the service as it works.
 *
 * <p>Per-image meters carry an {@code image} tag and names of their own, apart from the totals,
 * because one Prometheus name cannot mix tag sets. They are registered when an image joins the
 * registry and removed when it leaves, so a deleted image stops being reported at once instead of
 * lingering as a stale series. Their values are read from the engine's counters at scrape time.
 */
@Component
public class ImageMeters implements ImageServiceObserver {

  private final MeterRegistry registry;
  private final Map<String, List<Meter>> perImage = new ConcurrentHashMap<>();
  private final Timer readTimer;
  private final Timer writeTimer;
  private final Timer flushTimer;
  private final DistributionSummary readBytes;
  private final DistributionSummary writeBytes;
  private final Counter compactionMoved;
  private final Counter compactionReleased;
  private final Counter compactionFailures;

  public ImageMeters(MeterRegistry registry) {
    this.registry = registry;
    readTimer =
        Timer.builder("fvdisk.io.read")
            .description("Time data reads spent in the engine")
            .register(registry);
    writeTimer =
        Timer.builder("fvdisk.io.write")
            .description("Time data writes spent in the engine (flush not included)")
            .register(registry);
    flushTimer =
        Timer.builder("fvdisk.io.flush")
            .description("Time flushes took to make writes durable")
            .register(registry);
    readBytes =
        DistributionSummary.builder("fvdisk.io.read.bytes")
            .description("Bytes moved by each data read")
            .baseUnit(BaseUnits.BYTES)
            .register(registry);
    writeBytes =
        DistributionSummary.builder("fvdisk.io.write.bytes")
            .description("Bytes moved by each data write")
            .baseUnit(BaseUnits.BYTES)
            .register(registry);
    compactionMoved =
        Counter.builder("fvdisk.compaction.moved")
            .description("Chunk bytes background compaction moved towards the start of files")
            .baseUnit(BaseUnits.BYTES)
            .register(registry);
    compactionReleased =
        Counter.builder("fvdisk.compaction.released")
            .description("Bytes background compaction cut from the end of image files")
            .baseUnit(BaseUnits.BYTES)
            .register(registry);
    compactionFailures =
        Counter.builder("fvdisk.compaction.failures")
            .description("Background compaction steps that failed (each is logged)")
            .register(registry);
  }

  @Override
  public void imageOpened(String name, Supplier<@Nullable ImageUsage> usage) {
    // Registering an id that exists returns the old meter, still reading the old entry: a name
    // announced again must drop its meters first.
    imageClosed(name);
    Tags tags = Tags.of("image", name);
    List<Meter> meters = new ArrayList<>();
    meters.add(gauge("fvdisk.image.used", tags, usage, ImageUsage::usedBytes, BaseUnits.BYTES));
    meters.add(
        gauge(
            "fvdisk.image.provisioned",
            tags,
            usage,
            ImageUsage::provisionedBytes,
            BaseUnits.BYTES));
    meters.add(gauge("fvdisk.image.file", tags, usage, ImageUsage::fileBytes, BaseUnits.BYTES));
    meters.add(
        gauge("fvdisk.image.snapshot", tags, usage, ImageUsage::snapshotBytes, BaseUnits.BYTES));
    meters.add(gauge("fvdisk.image.leaked.chunks", tags, usage, ImageUsage::leakedChunks, null));
    meters.add(gauge("fvdisk.image.journal.used", tags, usage, ImageUsage::journalUsedRatio, null));
    meters.add(
        gauge(
            "fvdisk.image.copy.on.read.in.flight",
            tags,
            usage,
            ImageUsage::copyOnReadBytesInFlight,
            BaseUnits.BYTES));
    ImageUsage now = usage.get();
    if (now != null && now.hasBase()) {
      // Only clones prefetch; a progress series for every plain image would read as "done" noise.
      meters.add(
          gauge("fvdisk.image.prefetch.progress", tags, usage, ImageUsage::prefetchProgress, null));
      meters.add(
          gauge(
              "fvdisk.image.prefetch.copied",
              tags,
              usage,
              ImageUsage::prefetchCopiedBytes,
              BaseUnits.BYTES));
      meters.add(
          gauge(
              "fvdisk.image.prefetch.waiting.for.space",
              tags,
              usage,
              u -> u.prefetchWaitingForSpace() ? 1 : 0,
              null));
    }
    perImage.put(name, meters);
  }

  @Override
  public void imageClosed(String name) {
    List<Meter> meters = perImage.remove(name);
    if (meters != null) {
      meters.forEach(registry::remove);
    }
  }

  @Override
  public void read(long bytes, long nanos) {
    readTimer.record(nanos, TimeUnit.NANOSECONDS);
    readBytes.record(bytes);
  }

  @Override
  public void written(long bytes, long nanos) {
    writeTimer.record(nanos, TimeUnit.NANOSECONDS);
    writeBytes.record(bytes);
  }

  @Override
  public void flushed(long nanos) {
    flushTimer.record(nanos, TimeUnit.NANOSECONDS);
  }

  @Override
  public void compacted(String name, long movedBytes, long releasedBytes) {
    compactionMoved.increment(movedBytes);
    compactionReleased.increment(releasedBytes);
  }

  @Override
  public void compactionFailed(String name) {
    compactionFailures.increment();
  }

  /** A gauge that reads NaN once the image has left, until its removal catches up. */
  private Gauge gauge(
      String name,
      Tags tags,
      Supplier<@Nullable ImageUsage> usage,
      ToDoubleFunction<ImageUsage> value,
      @Nullable String baseUnit) {
    return Gauge.builder(
            name,
            usage,
            u -> {
              ImageUsage current = u.get();
              return current == null ? Double.NaN : value.applyAsDouble(current);
            })
        .tags(tags)
        .baseUnit(baseUnit)
        .strongReference(true)
        .register(registry);
  }
}
