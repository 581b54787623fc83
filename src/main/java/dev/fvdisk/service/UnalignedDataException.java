package dev.fvdisk.service;

/** A sector write whose body is not a non-zero whole number of 512-byte sectors. */
public class UnalignedDataException extends ServiceException {

  private static final long serialVersionUID = 1L;

  public UnalignedDataException(long lengthBytes) {
    super("a sector write needs a body of a non-zero multiple of 512 bytes, got " + lengthBytes);
    with("lengthBytes", lengthBytes);
  }
}
