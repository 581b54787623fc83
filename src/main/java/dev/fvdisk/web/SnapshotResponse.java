package dev.fvdisk.web;

import dev.fvdisk.service.SnapshotDescriptor;
import java.time.Instant;

/**
 * A snapshot as the contract shapes it.
 *
 * @param usedBytes chunk bytes only this snapshot holds: what deleting it frees
 */
record SnapshotResponse(String name, Instant createdAt, long sizeBytes, long usedBytes) {

  static SnapshotResponse of(SnapshotDescriptor d) {
    return new SnapshotResponse(d.name(), d.createdAt(), d.sizeBytes(), d.usedBytes());
  }
}
