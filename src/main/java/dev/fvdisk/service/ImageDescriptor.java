package dev.fvdisk.service;

import java.time.Instant;

/**
 * What the service tells about one image.
 *
 * @param etag the strong entity tag, unquoted; changes with every change of data or metadata
 * @param usedBytes what the image's chunks occupy
 * @param fileBytes length of the image file
 * @param leakedChunks chunks found unreferenced after recovery, not yet reused or reclaimed
 */
public record ImageDescriptor(
    String name,
    long sizeBytes,
    int chunkSizeBytes,
    int blockSizeBytes,
    boolean readOnly,
    long usedBytes,
    long fileBytes,
    long leakedChunks,
    Instant createdAt,
    String etag) {}
