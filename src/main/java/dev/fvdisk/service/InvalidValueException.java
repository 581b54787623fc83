package dev.fvdisk.service;

/** A well-formed request whose values break a rule (size, alignment, limits). */
public class InvalidValueException extends ServiceException {

  private static final long serialVersionUID = 1L;

  public InvalidValueException(String detail) {
    super(detail);
  }
}
