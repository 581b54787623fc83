package dev.fvdisk.config;

import jakarta.validation.constraints.Min;
import jakarta.validation.constraints.NotNull;
import java.nio.file.Path;
import java.time.Duration;
import org.jspecify.annotations.Nullable;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;
import org.springframework.util.unit.DataSize;
import org.springframework.validation.annotation.Validated;

/**
 * Everything under {@code fvdisk.*}. Sizes take Spring's data-size syntax ({@code 16TB}, {@code
 * 64KB}, or plain bytes).
 *
 * @param dataDir where image files live; created at start-up when missing. Default {@code ./data},
 *     or the environment variable {@code FVDISK_DATA_DIR} (see application.properties)
 * @param maxImageSize the largest virtual size an image may have or grow to; default 16 TiB
 * @param maxWriteSize the largest body of one data write; unset (the default) means unlimited, as
 *     bodies stream in bounded memory anyway
 * @param maxJsonBodySize the largest JSON request body; default 64 KiB
 * @param minFreeSpace free space of the data directory's file system that writes never use, so the
 *     host keeps room for metadata and logs; default 100 MiB
 * @param ioBufferSize the buffer each streaming read or write moves at a time; default 1 MiB
 * @param mapPageExtents the most extents one map answer holds; at least 1000 as the contract
 *     promises; default 1000
 * @param maxChainDepth the most images in a chain of clones: a clone, its base, that base's base
 *     and so on; default 16
 * @param maxImages the most images the data directory may hold; creating one more is 507; default
 *     10000
 * @param storageQuota the most bytes all images' chunks may take together; a write that needs more
 *     is 507; unset (the default) means only the file system's free space limits it
 * @param compaction background compaction, which gives the space of zeroed chunks back to the file
 *     system
 * @param storage where images are kept: local files (the default) or a bucket
 * @param nodeId this instance's name among several sharing one bucket; setting it turns image
 *     leases on (see docs/scale-out.md), and it must stay the same across restarts of the instance.
 *     Unset (the default): the only instance on its bucket prefix. Ignored for local files
 * @param advertisedUrl where other instances send clients for the images this one serves, such as
 *     {@code http://10.0.0.2:8080}; required with {@code node-id}
 */
@ConfigurationProperties("fvdisk")
@Validated
public record FvdiskProperties(
    @NotNull @DefaultValue("./data") Path dataDir,
    @NotNull @DefaultValue("16TB") DataSize maxImageSize,
    @Nullable DataSize maxWriteSize,
    @NotNull @DefaultValue("64KB") DataSize maxJsonBodySize,
    @NotNull @DefaultValue("100MB") DataSize minFreeSpace,
    @NotNull @DefaultValue("1MB") DataSize ioBufferSize,
    @Min(1000) @DefaultValue("1000") int mapPageExtents,
    @Min(1) @DefaultValue("16") int maxChainDepth,
    @Min(1) @DefaultValue("10000") int maxImages,
    @Nullable DataSize storageQuota,
    @NotNull @DefaultValue Compaction compaction,
    @NotNull @DefaultValue Storage storage,
    @Nullable String nodeId,
    @Nullable String advertisedUrl) {

  /**
   * Under {@code fvdisk.compaction.*}.
   *
   * @param enabled whether chunks are moved into the slots zeroing freed while the service runs, so
   *     image files shrink; default true. Off, files shrink only by their free tail when images
   *     close
   * @param quietPeriod how long an image must have had no client I/O before its chunks are moved;
   *     default 2s
   * @param maxRate the most chunk bytes moved per second over all images; default 64MB
   */
  public record Compaction(
      @DefaultValue("true") boolean enabled,
      @NotNull @DefaultValue("2s") Duration quietPeriod,
      @NotNull @DefaultValue("64MB") DataSize maxRate) {}

  /** Which back end keeps the images. */
  public enum Backend {
    /** Image files in the data directory. */
    LOCAL,
    /** An S3-compatible bucket, with the data directory as a local cache. */
    S3
  }

  /**
   * Under {@code fvdisk.storage.*}.
   *
   * @param backend {@code local} (the default): image files in the data directory; {@code s3}:
   *     images in a bucket ({@code docs/scale-out.md})
   * @param s3 the bucket, used when the back end is {@code s3}
   */
  public record Storage(
      @NotNull @DefaultValue("local") Backend backend, @NotNull @DefaultValue S3 s3) {}

  /**
   * Under {@code fvdisk.storage.s3.*}; the environment works as for every property ({@code
   * FVDISK_STORAGE_S3_ENDPOINT} and so on).
   *
   * @param endpoint the store's URL, such as {@code http://127.0.0.1:7480}; required for {@code s3}
   * @param region the region requests are signed for; default {@code us-east-1}
   * @param bucket the bucket; created when missing; required for {@code s3}
   * @param accessKey the access key; required for {@code s3}
   * @param secretKey the secret key; required for {@code s3}
   * @param prefix put before every key, so that several deployments can share a bucket; default
   *     none
   * @param requestTimeout the most one request to the store may take, retries included; default 30s
   * @param attemptTimeout the most one attempt of a request may take; default 10s
   * @param transferThreads page uploads of forces in flight at once over all images, each holding
   *     one page (1 MiB) in memory; default 8 (a page a read needs is fetched on the reading
   *     thread)
   * @param leaseSeconds how long an instance's lease on an image lasts unless renewed, when several
   *     instances share the bucket ({@code fvdisk.node-id}); renewals come every third of it, and
   *     another instance takes an image over this long after its owner stopped; default 10
   * @param cacheMaxBytes the local disk the cache files of all open images may take together; clean
   *     pages are evicted to stay under it, and writers force their image before the dirty pages of
   *     all images pass half of it; default 8GB
   */
  public record S3(
      @Nullable String endpoint,
      @NotNull @DefaultValue("us-east-1") String region,
      @Nullable String bucket,
      @Nullable String accessKey,
      @Nullable String secretKey,
      @NotNull @DefaultValue("") String prefix,
      @NotNull @DefaultValue("30s") Duration requestTimeout,
      @NotNull @DefaultValue("10s") Duration attemptTimeout,
      @Min(1) @DefaultValue("8") int transferThreads,
      @Min(1) @DefaultValue("10") int leaseSeconds,
      @NotNull @DefaultValue("8GB") DataSize cacheMaxBytes) {}
}
