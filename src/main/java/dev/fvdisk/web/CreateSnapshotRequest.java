package dev.fvdisk.web;

import org.jspecify.annotations.Nullable;

/** Body of {@code POST /api/v1/images/{name}/snapshots}. */
record CreateSnapshotRequest(@Nullable String name) {}
