package dev.fvdisk.web;

import java.util.List;

/** The snapshots of an image, oldest first. */
record SnapshotListResponse(List<SnapshotResponse> snapshots) {}
