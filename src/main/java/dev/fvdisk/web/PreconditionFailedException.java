package dev.fvdisk.web;

import dev.fvdisk.service.VersionMismatchException;

/**
 * An If-Match header named none of the image's current entity tags: the HTTP face of the service's
 * {@link VersionMismatchException}, whose version is the entity tag.
 */
class PreconditionFailedException extends HttpProblemException {

  private static final long serialVersionUID = 1L;

  private PreconditionFailedException(String image, String currentEtag, Throwable cause) {
    super("If-Match does not match the current entity tag of image \"" + image + "\"", cause);
    with("image", image).with("etag", currentEtag);
  }

  static PreconditionFailedException of(VersionMismatchException mismatch) {
    return new PreconditionFailedException(mismatch.image(), mismatch.currentVersion(), mismatch);
  }
}
