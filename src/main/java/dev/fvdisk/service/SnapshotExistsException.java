package dev.fvdisk.service;

/** The image has a snapshot of this name already. */
public class SnapshotExistsException extends ServiceException {

  private static final long serialVersionUID = 1L;

  public SnapshotExistsException(String image, String snapshot) {
    super("image \"" + image + "\" has a snapshot named \"" + snapshot + "\" already");
    with("image", image);
    with("snapshot", snapshot);
  }
}
