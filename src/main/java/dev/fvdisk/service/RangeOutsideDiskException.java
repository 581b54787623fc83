package dev.fvdisk.service;

/** A range that is not inside the virtual disk; carries the disk size. */
public class RangeOutsideDiskException extends ServiceException {

  private static final long serialVersionUID = 1L;

  private final long sizeBytes;

  public RangeOutsideDiskException(String detail, long sizeBytes) {
    super(detail);
    this.sizeBytes = sizeBytes;
    with("sizeBytes", sizeBytes);
  }

  public RangeOutsideDiskException(long offsetBytes, long lengthBytes, long sizeBytes) {
    this(
        "the range of "
            + lengthBytes
            + " bytes at offset "
            + offsetBytes
            + " is not inside the virtual disk of "
            + sizeBytes
            + " bytes",
        sizeBytes);
    with("offsetBytes", offsetBytes).with("lengthBytes", lengthBytes);
  }

  public long sizeBytes() {
    return sizeBytes;
  }
}
