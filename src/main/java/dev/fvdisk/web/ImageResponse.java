package dev.fvdisk.web;

import dev.fvdisk.service.ImageDescriptor;
import java.time.Instant;
import org.jspecify.annotations.Nullable;

/**
 * The image descriptor as the contract shapes it.
 *
 * @param snapshotCount how many snapshots the image has
 */
record ImageResponse(
    String name,
    long sizeBytes,
    long chunkSizeBytes,
    long blockSizeBytes,
    @Nullable String base,
    boolean readOnly,
    boolean copyOnRead,
    Prefetch prefetch,
    Storage storage,
    int snapshotCount,
    Instant createdAt) {

  /** Prefetch settings and progress. */
  record Prefetch(
      boolean enabled,
      long startDelaySeconds,
      String state,
      @Nullable String reason,
      long copiedBytes,
      long totalBytes) {}

  /**
   * What the image takes on disk.
   *
   * @param snapshotBytes what the chunk versions only its snapshots hold take, on top of {@code
   *     usedBytes}
   */
  record Storage(long usedBytes, long fileBytes, long leakedChunks, long snapshotBytes) {}

  static ImageResponse of(ImageDescriptor d) {
    ImageDescriptor.Prefetch p = d.prefetch();
    return new ImageResponse(
        d.name(),
        d.sizeBytes(),
        d.chunkSizeBytes(),
        d.blockSizeBytes(),
        d.base(),
        d.readOnly(),
        d.copyOnRead(),
        new Prefetch(
            p.enabled(),
            p.startDelaySeconds(),
            p.state(),
            p.reason(),
            p.copiedBytes(),
            p.totalBytes()),
        new Storage(d.usedBytes(), d.fileBytes(), d.leakedChunks(), d.snapshotBytes()),
        d.snapshotCount(),
        d.createdAt());
  }
}
