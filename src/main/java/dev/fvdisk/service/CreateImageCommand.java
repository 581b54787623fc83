package dev.fvdisk.service;

import org.jspecify.annotations.Nullable;

/** A request to create an image; null means "not given, use the default". */
public record CreateImageCommand(
    String name,
    @Nullable Long sizeBytes,
    @Nullable String base,
    @Nullable Long chunkSizeBytes,
    @Nullable Long blockSizeBytes,
    @Nullable Boolean copyOnRead,
    @Nullable Boolean prefetchEnabled,
    @Nullable Long prefetchStartDelaySeconds) {}
