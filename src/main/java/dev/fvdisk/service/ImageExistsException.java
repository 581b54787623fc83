package dev.fvdisk.service;

/** An image of this name exists already. */
public class ImageExistsException extends ServiceException {

  private static final long serialVersionUID = 1L;

  public ImageExistsException(String image) {
    super("an image named \"" + image + "\" exists already");
    with("image", image);
  }
}
