package dev.fvdisk.service;

import dev.fvdisk.engine.Extent;
import java.util.ArrayList;
import java.util.List;

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

  /** The engine's extents, as the service reports them. */
  static List<DiskExtent> of(List<Extent> extents) {
    List<DiskExtent> mapped = new ArrayList<>(extents.size());
    for (Extent e : extents) {
      mapped.add(
          new DiskExtent(
              e.offsetBytes(),
              e.lengthBytes(),
              switch (e.state()) {
                case DATA -> State.DATA;
                case ZERO -> State.ZERO;
                case BASE -> State.BASE;
              }));
    }
    return mapped;
  }
}
