package dev.fvdisk.web;

import org.jspecify.annotations.Nullable;

/** The writable prefetch settings, in a create request or a merge patch. */
record PrefetchSettings(@Nullable Boolean enabled, @Nullable Long startDelaySeconds) {}
