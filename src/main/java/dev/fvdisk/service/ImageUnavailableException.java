package dev.fvdisk.service;

/**
 * The image cannot serve now: it latched into an error state after a failed flush (a restart
 * recovers it), or the object store that keeps it does not answer.
 */
public class ImageUnavailableException extends ServiceException {

  private static final long serialVersionUID = 1L;

  public ImageUnavailableException(String image, Throwable cause) {
    super(
        "image \""
            + image
            + "\" is unavailable after an I/O error; it recovers at the next restart",
        cause);
    with("image", image);
  }

  private ImageUnavailableException(String image, String message, Throwable cause) {
    super(message, cause);
    with("image", image);
  }

  /** The image latched, and the service opens it again once its storage takes writes. */
  public static ImageUnavailableException untilReopened(String image, Throwable cause) {
    return new ImageUnavailableException(
        image,
        "image \""
            + image
            + "\" is unavailable after an I/O error; it is opened again once its store answers",
        cause);
  }

  /** The store that keeps the image did not answer; the image itself is fine. */
  public static ImageUnavailableException storeUnreachable(String image, Throwable cause) {
    return new ImageUnavailableException(
        image,
        "image \"" + image + "\" is unavailable: its object store does not answer; try again later",
        cause);
  }

  /**
   * This instance served the image until another took it over (it could not renew its lease in
   * time, such as after a long pause): its writes not yet flushed are lost, and new requests go to
   * the new owner.
   */
  public static ImageUnavailableException takenOver(String image, Throwable cause) {
    return new ImageUnavailableException(
        image,
        "image \""
            + image
            + "\" was taken over by another instance; writes this one had not flushed are lost, and"
            + " the image is now served there",
        cause);
  }
}
