package dev.fvdisk.web;

/**
 * A {@code Range}, {@code Content-Range} or sector span the disk cannot serve as asked: several
 * ranges, an empty or inverted one, one that starts past the end or names another disk size. Like
 * the service's range outside the disk, the answer carries the disk size.
 */
class RangeNotSatisfiableException extends HttpProblemException {

  private static final long serialVersionUID = 1L;

  private final long sizeBytes;

  RangeNotSatisfiableException(String detail, long sizeBytes) {
    super(detail, null);
    this.sizeBytes = sizeBytes;
    with("sizeBytes", sizeBytes);
  }

  long sizeBytes() {
    return sizeBytes;
  }
}
