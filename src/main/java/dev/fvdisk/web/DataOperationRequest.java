package dev.fvdisk.web;

import org.jspecify.annotations.Nullable;

/**
 * Body of {@code PATCH .../data}: {@code {"op":"zero","offsetBytes":…,"lengthBytes":…}} or {@code
 * {"op":"flush"}}. {@code flush} on a zero operation may say {@code false}, like the query
 * parameter.
 */
record DataOperationRequest(
    @Nullable String op,
    @Nullable Long offsetBytes,
    @Nullable Long lengthBytes,
    @Nullable Boolean flush) {}
