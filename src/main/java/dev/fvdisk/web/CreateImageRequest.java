package dev.fvdisk.web;

import org.jspecify.annotations.Nullable;

/** Body of {@code POST /api/v1/images}; only {@code name} is required. */
record CreateImageRequest(
    @Nullable String name,
    @Nullable Long sizeBytes,
    @Nullable String base,
    @Nullable Long chunkSizeBytes,
    @Nullable Long blockSizeBytes,
    @Nullable Boolean copyOnRead,
    @Nullable PrefetchSettings prefetch) {}
