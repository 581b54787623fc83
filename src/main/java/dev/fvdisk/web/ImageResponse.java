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

  /** Prefetch state; {@code disabled} until base images exist. */
  record Prefetch(
      boolean enabled, long startDelaySeconds, String state, long copiedBytes, long totalBytes) {}

  /** What the image takes on disk. */
  record Storage(long usedBytes, long fileBytes, long leakedChunks) {}

  static ImageResponse of(ImageDescriptor d) {
    return new ImageResponse(
        d.name(),
        d.sizeBytes(),
        d.chunkSizeBytes(),
        d.blockSizeBytes(),
        null,
        d.readOnly(),
        false,
        new Prefetch(false, 0, "disabled", 0, 0),
        new Storage(d.usedBytes(), d.fileBytes(), d.leakedChunks()),
        d.createdAt());
  }
}
