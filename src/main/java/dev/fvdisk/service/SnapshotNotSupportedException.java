package dev.fvdisk.service;

/**
 * The image cannot have snapshots yet: it is a clone that still reads from its base. A snapshot
 * would have to keep the base's bytes too; once prefetching has copied the whole base the clone
 * stands alone and takes snapshots like any other image.
 */
public class SnapshotNotSupportedException extends ServiceException {

  private static final long serialVersionUID = 1L;

  public SnapshotNotSupportedException(String image, String base) {
    super(
        "image \""
            + image
            + "\" still reads from its base \""
            + base
            + "\"; it can have snapshots once prefetching has finished and it holds all its data");
    with("image", image);
  }
}
