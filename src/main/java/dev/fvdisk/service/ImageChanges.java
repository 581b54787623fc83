package dev.fvdisk.service;

import org.jspecify.annotations.Nullable;

/** The writable fields of an image a merge patch names; null means "leave as it is". */
public record ImageChanges(
    @Nullable Long sizeBytes,
    @Nullable Boolean readOnly,
    @Nullable Boolean copyOnRead,
    @Nullable Boolean prefetchEnabled,
    @Nullable Long prefetchStartDelaySeconds) {}
