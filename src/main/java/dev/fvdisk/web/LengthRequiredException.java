package dev.fvdisk.web;

/** A write whose length neither Content-Range nor Content-Length gives. */
class LengthRequiredException extends HttpProblemException {

  private static final long serialVersionUID = 1L;

  LengthRequiredException(String detail) {
    super(detail, null);
  }
}
