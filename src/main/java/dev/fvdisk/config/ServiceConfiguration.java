package dev.fvdisk.config;

import dev.fvdisk.objectstore.BucketStorage;
import dev.fvdisk.service.BucketImageDirectory;
import dev.fvdisk.service.CompactionPolicy;
import dev.fvdisk.service.DataDirectoryLock;
import dev.fvdisk.service.ImageDirectory;
import dev.fvdisk.service.ImageService;
import dev.fvdisk.service.ImageServiceObserver;
import dev.fvdisk.service.ServiceLimits;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.DependsOn;

/** Builds the image service from the validated properties. */
@Configuration(proxyBeanMethods = false)
@EnableConfigurationProperties(FvdiskProperties.class)
class ServiceConfiguration {

  @Bean
  ServiceLimits serviceLimits(FvdiskProperties properties) {
    return new ServiceLimits(
        properties.maxImageSize().toBytes(),
        properties.maxWriteSize() == null ? null : properties.maxWriteSize().toBytes(),
        properties.maxJsonBodySize().toBytes(),
        properties.minFreeSpace().toBytes(),
        Math.toIntExact(properties.ioBufferSize().toBytes()),
        properties.mapPageExtents(),
        properties.maxChainDepth(),
        properties.maxImages(),
        properties.storageQuota() == null ? null : properties.storageQuota().toBytes());
  }

  @Bean
  ImageDirectory imageDirectory(
      FvdiskProperties properties, ObjectProvider<BucketConnection> bucket) {
    Path root;
    try {
      Files.createDirectories(properties.dataDir());
      root = properties.dataDir().toRealPath();
    } catch (IOException e) {
      throw new UncheckedIOException(
          "cannot create or resolve the data directory " + properties.dataDir(), e);
    }
    BucketConnection connection = bucket.getIfAvailable();
    if (connection == null) {
      return new ImageDirectory(root);
    }
    try {
      String nodeId = properties.nodeId();
      String url = properties.advertisedUrl();
      if (nodeId != null && (url == null || url.isBlank())) {
        throw new IllegalStateException(
            "fvdisk.node-id is set but fvdisk.advertised-url is not: other instances could not"
                + " send clients to this one");
      }
      return new BucketImageDirectory(
          root,
          connection.store(),
          connection.transfers(),
          BucketStorage.Settings.DEFAULTS
              .withCache(connection.cache())
              .withGarbageCounters(connection.garbage()),
          nodeId == null || nodeId.isBlank() ? null : nodeId,
          url == null ? null : url.replaceAll("/+$", ""),
          Duration.ofSeconds(properties.storage().s3().leaseSeconds()),
          System::currentTimeMillis);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read the image names in the bucket", e);
    }
  }

  /**
   * Taken before any image is opened and held until after the service closed them all: the service
   * {@code @DependsOn} it, so Spring creates the lock first and closes it last (close() is
   * inferred).
   */
  @Bean
  DataDirectoryLock dataDirectoryLock(ImageDirectory directory) {
    try {
      return DataDirectoryLock.acquire(directory.root());
    } catch (IOException e) {
      throw new UncheckedIOException("cannot lock the data directory " + directory.root(), e);
    }
  }

  // Closed by Spring at shutdown (close() is inferred), which sets every image's clean flag.
  // The observer (monitoring's meters) is optional, so the service runs without monitoring too.
  @Bean
  @DependsOn("dataDirectoryLock")
  ImageService imageService(
      ImageDirectory directory,
      ServiceLimits limits,
      FvdiskProperties properties,
      ObjectProvider<ImageServiceObserver> observer) {
    ImageService service =
        new ImageService(
            directory, limits, observer.getIfAvailable(() -> ImageServiceObserver.NONE));
    service.openAll();
    // On a bucket, an image that latched because its store stopped answering comes back once the
    // store does; on local files only a restart reopens it.
    service.startReopeningLatchedImages(Duration.ofSeconds(2));
    // Where instances share the bucket, each keeps the images it serves leased to itself.
    service.startRenewingLeases();
    FvdiskProperties.Compaction compaction = properties.compaction();
    if (compaction.enabled()) {
      service.startCompaction(
          new CompactionPolicy(compaction.quietPeriod(), compaction.maxRate().toBytes()));
    }
    return service;
  }
}
