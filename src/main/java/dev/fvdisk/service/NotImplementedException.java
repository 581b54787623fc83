package dev.fvdisk.service;

/** A feature of the contract this build does not implement yet. */
public class NotImplementedException extends ServiceException {

  private static final long serialVersionUID = 1L;

  public NotImplementedException(String detail) {
    super(detail);
  }
}
