package dev.fvdisk.service;

import java.util.List;

/** Clones read through this snapshot as their base, so it cannot be deleted. */
public class SnapshotInUseException extends ServiceException {

  private static final long serialVersionUID = 1L;

  public SnapshotInUseException(String image, String snapshot, List<String> clones) {
    super(
        "snapshot \""
            + snapshot
            + "\" of image \""
            + image
            + "\" is the base of "
            + String.join(", ", clones)
            + "; delete them or let them finish prefetching");
    with("image", image);
    with("snapshot", snapshot);
    with("clones", List.copyOf(clones));
  }
}
