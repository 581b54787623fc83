package dev.fvdisk.config;

import dev.fvdisk.monitoring.StorageEndpoint;
import dev.fvdisk.objectstore.GarbageCounters;
import dev.fvdisk.objectstore.MeasuredObjectStore;
import dev.fvdisk.objectstore.ObjectStore;
import dev.fvdisk.objectstore.PageCache;
import dev.fvdisk.objectstore.S3ObjectStore;
import dev.fvdisk.service.BucketImageDirectory;
import dev.fvdisk.service.ImageDirectory;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.binder.MeterBinder;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.time.Duration;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.boot.autoconfigure.condition.ConditionalOnProperty;
import org.springframework.boot.health.contributor.Health;
import org.springframework.boot.health.contributor.HealthIndicator;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * The bucket, when {@code fvdisk.storage.backend=s3}: one client for the whole service and one pool
 * for the transfers of forces and fetches. Closed by Spring after the image service, which depends
 * on them through the image directory.
 */
@Configuration(proxyBeanMethods = false)
@ConditionalOnProperty(name = "fvdisk.storage.backend", havingValue = "s3")
class BucketConfiguration {

  @Bean(destroyMethod = "close")
  BucketConnection bucketConnection(
      FvdiskProperties properties, ObjectProvider<MeterRegistry> meters) {
    FvdiskProperties.S3 s3 = properties.storage().s3();
    require(s3.endpoint(), "endpoint");
    require(s3.bucket(), "bucket");
    require(s3.accessKey(), "access-key");
    require(s3.secretKey(), "secret-key");
    String prefix = prefixOf(s3);
    S3ObjectStore store;
    try {
      store =
          S3ObjectStore.open(
              new S3ObjectStore.Settings(
                  URI.create(s3.endpoint()),
                  s3.region(),
                  s3.bucket(),
                  prefix,
                  s3.accessKey(),
                  s3.secretKey(),
                  s3.requestTimeout(),
                  s3.attemptTimeout()));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot reach the bucket " + s3.bucket(), e);
    }
    AtomicInteger threads = new AtomicInteger();
    ThreadFactory named =
        r -> {
          Thread t = new Thread(r, "bucket-transfer-" + threads.incrementAndGet());
          t.setDaemon(true);
          return t;
        };
    ExecutorService transfers = Executors.newFixedThreadPool(s3.transferThreads(), named);
    MeterRegistry registry = meters.getIfAvailable();
    ObjectStore measured =
        registry == null ? store : new MeasuredObjectStore(store, requestMeters(registry));
    PageCache cache = PageCache.bounded(s3.cacheMaxBytes().toBytes());
    GarbageCounters garbage = new GarbageCounters();
    if (registry != null) {
      cacheMeters(registry, cache);
      garbageMeters(registry, garbage);
    }
    return new BucketConnection(store, measured, transfers, cache, garbage);
  }

  /** The prefix as the keys use it: no leading slash, a trailing one unless it is empty. */
  private static String prefixOf(FvdiskProperties.S3 s3) {
    String prefix = s3.prefix().replaceFirst("^/+", "");
    return prefix.isEmpty() || prefix.endsWith("/") ? prefix : prefix + "/";
  }

  /**
   * {@code fvdisk.bucket.cache.bytes} (cached and dirty, beside the bound), and the counts of cache
   * hits, pages fetched from the bucket and pages evicted: the hit ratio is hits over hits plus
   * fetches.
   */
  private static void cacheMeters(MeterRegistry registry, PageCache cache) {
    Gauge.builder("fvdisk.bucket.cache.bytes", cache, PageCache::cachedBytes)
        .description("Local disk the cached pages of the open images take")
        .baseUnit("bytes")
        .tag("state", "cached")
        .register(registry);
    Gauge.builder("fvdisk.bucket.cache.bytes", cache, PageCache::dirtyBytes)
        .description("Local disk the cached pages of the open images take")
        .baseUnit("bytes")
        .tag("state", "dirty")
        .register(registry);
    Gauge.builder("fvdisk.bucket.cache.max", cache, PageCache::maxBytes)
        .description("The bound of the local cache (fvdisk.storage.s3.cache-max-bytes)")
        .baseUnit("bytes")
        .register(registry);
    FunctionCounter.builder("fvdisk.bucket.cache.hits", cache, PageCache::hits)
        .description("Reads and writes of pages that were in the local cache")
        .register(registry);
    FunctionCounter.builder("fvdisk.bucket.cache.fetches", cache, PageCache::fetches)
        .description("Pages fetched from the bucket because they were not in the local cache")
        .register(registry);
    FunctionCounter.builder("fvdisk.bucket.cache.evictions", cache, PageCache::evictions)
        .description("Clean pages dropped from the local cache to stay under its bound")
        .register(registry);
  }

  /**
   * {@code fvdisk.bucket.gc.runs} and {@code fvdisk.bucket.gc.deleted.objects}: garbage collections
   * behind the writers' checkpoints, over every image, and the objects they deleted. Registered
   * with the cache meters, so they are there (at 0) before the first collection is due.
   */
  private static void garbageMeters(MeterRegistry registry, GarbageCounters garbage) {
    FunctionCounter.builder("fvdisk.bucket.gc.runs", garbage, GarbageCounters::runs)
        .description("Garbage collections started behind an image's checkpoint")
        .register(registry);
    FunctionCounter.builder(
            "fvdisk.bucket.gc.deleted.objects", garbage, GarbageCounters::deletedObjects)
        .description("Records, checkpoints and page objects garbage collection deleted")
        .register(registry);
  }

  /**
   * With {@code fvdisk.node-id} (leases on): {@code fvdisk.bucket.leases.held}, and the counts of
   * leases taken from another instance and of images given up because another instance took their
   * lease. Without it there are no leases, so, as the bucket meters without a bucket, none of these
   * is registered.
   */
  @Bean
  MeterBinder bucketLeaseMeters(ImageDirectory directory) {
    return registry -> {
      if (!(directory instanceof BucketImageDirectory bucket) || bucket.nodeId() == null) {
        return;
      }
      Gauge.builder("fvdisk.bucket.leases.held", bucket, BucketImageDirectory::leasesHeld)
          .description("Image leases this instance holds and has not let run out")
          .register(registry);
      FunctionCounter.builder(
              "fvdisk.bucket.leases.taken.over", bucket, BucketImageDirectory::leasesTakenOver)
          .description(
              "Image leases this instance took that another instance held last (run out, or given"
                  + " up at its shutdown)")
          .register(registry);
      FunctionCounter.builder("fvdisk.bucket.leases.lost", bucket, BucketImageDirectory::leasesLost)
          .description("Images this instance gave up because another instance took their lease")
          .register(registry);
    };
  }

  /**
   * The {@code bucket} section of {@code /actuator/storage}: where the bucket is (never its keys),
   * the cache, garbage collection and, with leases on, this instance's leases.
   */
  @Bean
  StorageEndpoint.BucketFigures bucketFigures(
      BucketConnection connection, FvdiskProperties properties, ImageDirectory directory) {
    FvdiskProperties.S3 s3 = properties.storage().s3();
    String prefix = prefixOf(s3);
    PageCache cache = connection.cache();
    GarbageCounters garbage = connection.garbage();
    return () -> {
      StorageEndpoint.LeaseReport leases = null;
      if (directory instanceof BucketImageDirectory bucket && bucket.nodeId() != null) {
        leases =
            new StorageEndpoint.LeaseReport(
                bucket.nodeId(),
                bucket.leasesHeld(),
                bucket.leasesTakenOver(),
                bucket.leasesLost());
      }
      return new StorageEndpoint.BucketReport(
          String.valueOf(s3.endpoint()),
          String.valueOf(s3.bucket()),
          prefix,
          cache.maxBytes(),
          cache.cachedBytes(),
          cache.dirtyBytes(),
          cache.hits(),
          cache.fetches(),
          cache.evictions(),
          garbage.runs(),
          garbage.deletedObjects(),
          leases);
    };
  }

  /**
   * The {@code bucket} health component: DOWN while the bucket does not answer a HEAD within 2 s.
   * Then every request that needs the store fails with 503 after its timeout; a load balancer
   * should send clients elsewhere rather than let them wait.
   */
  @Bean
  HealthIndicator bucketHealthIndicator(BucketConnection connection, FvdiskProperties properties) {
    FvdiskProperties.S3 s3 = properties.storage().s3();
    return () -> {
      long started = System.nanoTime();
      boolean answers = connection.client().answers(Duration.ofSeconds(2));
      return (answers ? Health.up() : Health.down())
          .withDetail("endpoint", String.valueOf(s3.endpoint()))
          .withDetail("bucket", String.valueOf(s3.bucket()))
          .withDetail("probeMillis", (System.nanoTime() - started) / 1_000_000)
          .build();
    };
  }

  /**
   * {@code fvdisk.bucket.requests} (a timer per operation and outcome: count, total and longest
   * time) and {@code fvdisk.bucket.bytes} (uploaded and downloaded).
   */
  private static MeasuredObjectStore.Meter requestMeters(MeterRegistry registry) {
    Map<String, Timer> timers = new ConcurrentHashMap<>();
    Counter uploaded = bytes(registry, "upload");
    Counter downloaded = bytes(registry, "download");
    return (operation, succeeded, bytes, nanos) -> {
      String op = operation.name().toLowerCase(Locale.ROOT);
      String outcome = succeeded ? "success" : "failure";
      timers
          .computeIfAbsent(
              op + "/" + outcome,
              k ->
                  Timer.builder("fvdisk.bucket.requests")
                      .description("Requests to the store that keeps the images")
                      .tag("operation", op)
                      .tag("outcome", outcome)
                      .register(registry))
          .record(nanos, TimeUnit.NANOSECONDS);
      if (bytes > 0) {
        (operation == MeasuredObjectStore.Operation.GET ? downloaded : uploaded).increment(bytes);
      }
    };
  }

  private static Counter bytes(MeterRegistry registry, String direction) {
    return Counter.builder("fvdisk.bucket.bytes")
        .description("Bytes moved to and from the store that keeps the images")
        .baseUnit("bytes")
        .tag("direction", direction)
        .register(registry);
  }

  private static void require(String value, String name) {
    if (value == null || value.isBlank()) {
      throw new IllegalStateException("fvdisk.storage.backend=s3 needs fvdisk.storage.s3." + name);
    }
  }
}
