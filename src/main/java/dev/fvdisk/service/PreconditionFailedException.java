package dev.fvdisk.service;

/** An If-Match header named none of the image's current entity tags. */
public class PreconditionFailedException extends ServiceException {

  private static final long serialVersionUID = 1L;

  public PreconditionFailedException(String image, String currentEtag) {
    super("If-Match does not match the current entity tag of image \"" + image + "\"");
    with("image", image).with("etag", currentEtag);
  }
}
