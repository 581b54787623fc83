package dev.fvdisk.web;

/** A write's body that does not match its {@code Content-Digest}; nothing was written. */
class DigestMismatchException extends HttpProblemException {

  private static final long serialVersionUID = 1L;

  DigestMismatchException(DigestAlgorithm algorithm, long lengthBytes, String image) {
    super(
        "the "
            + algorithm.key()
            + " digest of the "
            + lengthBytes
            + "-byte body does not match its Content-Digest; nothing was written to image \""
            + image
            + "\"",
        null);
    with("image", image).with("lengthBytes", lengthBytes);
  }
}
