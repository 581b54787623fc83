package dev.fvdisk.service;

import java.time.Instant;

/**
 * What the service tells about one snapshot of an image.
 *
 * @param createdAt when it was taken
 * @param sizeBytes the virtual size it reads as: the image's when it was taken
 * @param usedBytes chunk bytes only this snapshot holds, which deleting it frees; 0 right after it
 *     was taken, growing as the image changes chunks it shares with the snapshot
 */
public record SnapshotDescriptor(String name, Instant createdAt, long sizeBytes, long usedBytes) {}
