package dev.fvdisk.service;

import java.util.List;

/** Other images read through this one as their base, so it cannot be deleted or made writable. */
public class ImageInUseException extends ServiceException {

  private static final long serialVersionUID = 1L;

  public ImageInUseException(String image, List<String> clones, String what) {
    super("image \"" + image + "\" is the base of " + String.join(", ", clones) + "; " + what);
    with("image", image);
    with("clones", List.copyOf(clones));
  }
}
