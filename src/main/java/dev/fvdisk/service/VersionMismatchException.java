package dev.fvdisk.service;

/** A conditional change found the image at another version than it expected; nothing changed. */
public class VersionMismatchException extends ServiceException {

  private static final long serialVersionUID = 1L;

  private final String image;
  private final String currentVersion;

  /**
   * @param currentVersion the image's version now; empty for an image that has none (its file
   *     failed to open)
   */
  public VersionMismatchException(String image, String currentVersion) {
    super("image \"" + image + "\" is not at the version the change expects");
    this.image = image;
    this.currentVersion = currentVersion;
    with("image", image).with("version", currentVersion);
  }

  public String image() {
    return image;
  }

  public String currentVersion() {
    return currentVersion;
  }
}
