package dev.fvdisk.service;

import java.time.Instant;
import org.jspecify.annotations.Nullable;

/**
 * What the service tells about one image.
 *
 * @param blockSizeBytes the copy-on-write unit of a clone; for an image without a base the value a
 *     clone with this chunk size would get by default
 * @param base the image this one reads through, or null when it has none or holds all its data
 * @param usedBytes what the image's chunks occupy
 * @param fileBytes length of the image file
 * @param leakedChunks chunks found unreferenced after recovery, not yet reused or reclaimed
 * @param snapshotBytes what the chunk versions only the image's snapshots hold occupy
 * @param snapshotCount how many snapshots the image has
 * @param version changes with every change of data or metadata and never repeats (see {@link
 *     VirtualDisk#version()})
 */
public record ImageDescriptor(
    String name,
    long sizeBytes,
    int chunkSizeBytes,
    int blockSizeBytes,
    @Nullable String base,
    boolean readOnly,
    boolean copyOnRead,
    Prefetch prefetch,
    long usedBytes,
    long fileBytes,
    long leakedChunks,
    long snapshotBytes,
    int snapshotCount,
    Instant createdAt,
    String version) {

  /**
   * Prefetch settings and progress.
   *
   * @param state {@code disabled}, {@code waiting}, {@code running}, {@code paused} or {@code done}
   * @param reason why it is paused or disabled, for an operator; null when there is nothing to say
   * @param copiedBytes bytes of the base's range that are in the image, whether prefetching,
   *     copy-on-read or a client's write put them there
   * @param totalBytes bytes of the base's range
   */
  public record Prefetch(
      boolean enabled,
      long startDelaySeconds,
      String state,
      @Nullable String reason,
      long copiedBytes,
      long totalBytes) {}
}
