package dev.fvdisk.service;

/** A request that cannot be parsed or does not match the schema. */
public class InvalidRequestException extends ServiceException {

  private static final long serialVersionUID = 1L;

  public InvalidRequestException(String detail) {
    super(detail);
  }
}
