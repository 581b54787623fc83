package dev.fvdisk.web;

import com.fasterxml.jackson.annotation.JsonSetter;
import com.fasterxml.jackson.annotation.Nulls;
import org.jspecify.annotations.Nullable;

/**
 * A JSON merge patch of an image's writable fields. An absent field stays as it is; none of them
 * can be removed, so an explicit {@code null} does not match the schema.
 */
record PatchImageRequest(
    @JsonSetter(nulls = Nulls.FAIL) @Nullable Long sizeBytes,
    @JsonSetter(nulls = Nulls.FAIL) @Nullable Boolean readOnly,
    @JsonSetter(nulls = Nulls.FAIL) @Nullable Boolean copyOnRead,
    @JsonSetter(nulls = Nulls.FAIL) @Nullable PrefetchSettings prefetch) {}
