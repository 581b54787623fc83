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

  private InsufficientStorageException(String detail) {
    super(detail);
  }

  /**
   * The file system ran out of space (or the user's disk quota) in the middle of a request. What
   * the request wrote before that may be there; the image stays consistent.
   */
  public static InsufficientStorageException diskFull(String image, String reason) {
    InsufficientStorageException e =
        new InsufficientStorageException(
            "the data directory's file system is full while writing image \""
                + image
                + "\" ("
                + reason
                + "); each sector holds its old or its new content");
    e.with("image", image);
    return e;
  }

  /**
   * A body that is checked before it is written does not fit in the staging area: staging it would
   * take the file system below the free space writes leave alone.
   */
  public static InsufficientStorageException staging(long neededBytes, long availableBytes) {
    InsufficientStorageException e =
        new InsufficientStorageException(
            "the body of "
                + neededBytes
                + " bytes is staged in the data directory to be checked before it is written,"
                + " but only "
                + availableBytes
                + " bytes are available there; nothing was written");
    e.with("neededBytes", neededBytes).with("availableBytes", availableBytes);
    return e;
  }

  /** The file system ran out of space while a body was staged; nothing was written to the image. */
  public static InsufficientStorageException stagingFull(String reason) {
    return new InsufficientStorageException(
        "the data directory's file system filled up while the body was staged ("
            + reason
            + "); nothing was written");
  }

  /** The data directory holds the configured maximum number of images already. */
  public static InsufficientStorageException imageCount(int imageCount, int maxImages) {
    InsufficientStorageException e =
        new InsufficientStorageException(
            "the data directory holds "
                + imageCount
                + " images, the configured maximum is "
                + maxImages);
    e.with("imageCount", imageCount).with("maxImages", maxImages);
    return e;
  }
}
