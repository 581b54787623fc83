package dev.fvdisk.web;

import com.fasterxml.jackson.annotation.JsonSetter;
import com.fasterxml.jackson.annotation.Nulls;
import org.jspecify.annotations.Nullable;

/** The writable prefetch settings, in a create request or a merge patch. */
record PrefetchSettings(
    @JsonSetter(nulls = Nulls.FAIL) @Nullable Boolean enabled,
    @JsonSetter(nulls = Nulls.FAIL) @Nullable Long startDelaySeconds) {}
