package dev.fvdisk.service;

/** The image has as many snapshots as it may have; one must be deleted before another is taken. */
public class SnapshotLimitException extends ServiceException {

  private static final long serialVersionUID = 1L;

  public SnapshotLimitException(String image, int maxSnapshots) {
    super(
        "image \""
            + image
            + "\" has "
            + maxSnapshots
            + " snapshots, the most an image may have; delete one to take another");
    with("image", image);
    with("maxSnapshots", maxSnapshots);
  }
}
