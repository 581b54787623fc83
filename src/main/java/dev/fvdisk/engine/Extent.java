package dev.fvdisk.engine;

/**
 * A run of the virtual disk whose bytes all come from the same place.
 *
 * @param offsetBytes where the run starts on the virtual disk
 * @param lengthBytes how long it is; positive
 * @param state where its bytes come from
 */
public record Extent(long offsetBytes, long lengthBytes, State state) {

  /** Where an extent's bytes come from. */
  public enum State {
    /** Stored in this image's chunks. */
    DATA,
    /** Read from the base image chain. */
    BASE,
    /** Reads as zeros without being stored. */
    ZERO
  }

  public Extent {
    if (offsetBytes < 0 || lengthBytes <= 0) {
      throw new IllegalArgumentException(
          "extent needs offset >= 0 and length > 0, was " + offsetBytes + " and " + lengthBytes);
    }
  }

  public long endBytes() {
    return offsetBytes + lengthBytes;
  }
}
