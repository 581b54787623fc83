package dev.fvdisk.web;

import dev.fvdisk.service.VirtualDisk;

/**
 * What an answer about an image's data needs: the size to check a range against and the entity tag
 * to send, taken once when the request starts.
 */
record DataState(long sizeBytes, String etag) {

  static DataState of(VirtualDisk disk) {
    // The tag first: a racing change leaves a stale tag, never a new size under an old tag.
    String etag = disk.version();
    return new DataState(disk.sizeBytes(), etag);
  }
}
