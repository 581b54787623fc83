package dev.fvdisk.web;

/** A request body over a configured limit. */
class PayloadTooLargeException extends HttpProblemException {

  private static final long serialVersionUID = 1L;

  PayloadTooLargeException(long lengthBytes, long limitBytes) {
    super(
        "the body of " + lengthBytes + " bytes is over the limit of " + limitBytes + " bytes",
        null);
    with("lengthBytes", lengthBytes).with("limitBytes", limitBytes);
  }

  private PayloadTooLargeException(long limitBytes) {
    super(
        "the body, sent without Content-Length, ran past the limit of "
            + limitBytes
            + " bytes; it was not read further",
        null);
    with("limitBytes", limitBytes);
  }

  /** A body that did not say how long it is and turned out longer than the limit. */
  static PayloadTooLargeException withoutLength(long limitBytes) {
    return new PayloadTooLargeException(limitBytes);
  }
}
