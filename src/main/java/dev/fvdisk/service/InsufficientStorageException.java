package dev.fvdisk.service;

/** Not enough free space for what a request would allocate; nothing was written. */
public class InsufficientStorageException extends ServiceException {

  private static final long serialVersionUID = 1L;

  public InsufficientStorageException(long neededBytes, long availableBytes) {
    super(
        "the request needs "
            + neededBytes
            + " bytes of new storage but only "
            + availableBytes
            + " bytes are available");
    with("neededBytes", neededBytes).with("availableBytes", availableBytes);
  }
}
