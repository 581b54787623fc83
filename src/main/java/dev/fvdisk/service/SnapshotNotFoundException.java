package dev.fvdisk.service;

/** The image has no snapshot of this name (or the name cannot exist). */
public class SnapshotNotFoundException extends ServiceException {

  private static final long serialVersionUID = 1L;

  public SnapshotNotFoundException(String image, String snapshot) {
    super("image \"" + image + "\" has no snapshot named \"" + snapshot + "\"");
    with("image", image);
    with("snapshot", snapshot);
  }
}
