package dev.fvdisk.service;

/** A write whose length neither Content-Range nor Content-Length gives. */
public class LengthRequiredException extends ServiceException {

  private static final long serialVersionUID = 1L;

  public LengthRequiredException(String detail) {
    super(detail);
  }
}
