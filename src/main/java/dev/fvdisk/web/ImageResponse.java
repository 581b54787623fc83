package dev.fvdisk.web;

import dev.fvdisk.service.ImageDescriptor;
import java.time.Instant;
import org.jspecify.annotations.Nullable;

/** The image descriptor as the contract shapes it. */
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
    Instant createdAt) {

  /** Prefetch settings and progress. */
  record Prefetch(
      boolean enabled,
      long startDelaySeconds,
      String state,
      @Nullable String reason,
      long copiedBytes,
      long totalBytes) {}

  /** What the image takes on disk. */
  record Storage(long usedBytes, long fileBytes, long leakedChunks) {}

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
        new Storage(d.usedBytes(), d.fileBytes(), d.leakedChunks()),
        d.createdAt());
  }
}
