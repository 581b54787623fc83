package dev.fvdisk.service;

/** A request body over a configured limit. */
public class PayloadTooLargeException extends ServiceException {

  private static final long serialVersionUID = 1L;

  public PayloadTooLargeException(long lengthBytes, long limitBytes) {
    super("the body of " + lengthBytes + " bytes is over the limit of " + limitBytes + " bytes");
    with("lengthBytes", lengthBytes).with("limitBytes", limitBytes);
  }

  private PayloadTooLargeException(long limitBytes) {
    super(
        "the body, sent without Content-Length, ran past the limit of "
            + limitBytes
            + " bytes; it was not read further");
    with("limitBytes", limitBytes);
  }

  /** A body that did not say how long it is and turned out longer than the limit. */
  public static PayloadTooLargeException withoutLength(long limitBytes) {
    return new PayloadTooLargeException(limitBytes);
  }
}
