package dev.fvdisk.service;

/** A request body over a configured limit. */
public class PayloadTooLargeException extends ServiceException {

  private static final long serialVersionUID = 1L;

  public PayloadTooLargeException(long lengthBytes, long limitBytes) {
    super("the body of " + lengthBytes + " bytes is over the limit of " + limitBytes + " bytes");
    with("lengthBytes", lengthBytes).with("limitBytes", limitBytes);
  }
}
