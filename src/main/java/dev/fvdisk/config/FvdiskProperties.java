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
    @NotNull @DefaultValue Compaction compaction) {

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
}
