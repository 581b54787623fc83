package dev.fvdisk.service;

/**
 * A run of a virtual disk whose bytes all come from the same place.
 *
 * @param offsetBytes where the run starts on the virtual disk
 * @param lengthBytes how long it is; positive
 * @param state where its bytes come from
 */
public record DiskExtent(long offsetBytes, long lengthBytes, State state) {

  /** Where an extent's bytes come from. */
  public enum State {
    /** Stored in the image itself. */
    DATA,
    /** Reads as zeros without being stored: never written, or zeroed. */
    ZERO,
    /** Read from the chain of base images. */
    BASE
  }

  public long endBytes() {
    return offsetBytes + lengthBytes;
  }
}
