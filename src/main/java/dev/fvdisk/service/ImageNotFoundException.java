package dev.fvdisk.service;

/** No image has this name (or the name cannot exist). */
public class ImageNotFoundException extends ServiceException {

  private static final long serialVersionUID = 1L;

  public ImageNotFoundException(String image) {
    super("no image named \"" + image + "\"");
    with("image", image);
  }
}
