package dev.fvdisk.web;

import org.jspecify.annotations.Nullable;

/**
 * A JSON merge patch of an image's writable fields. None of them can be removed, so an absent field
 * and an explicit {@code null} both leave the field as it is.
 */
record PatchImageRequest(
    @Nullable Long sizeBytes,
    @Nullable Boolean readOnly,
    @Nullable Boolean copyOnRead,
    @Nullable PrefetchSettings prefetch) {}
