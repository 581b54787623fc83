package dev.fvdisk.engine;

/** An operation was attempted on an {@link Image} after {@link Image#close()}. */
public class ImageClosedException extends IllegalStateException {

  private static final long serialVersionUID = 1L;

  public ImageClosedException(String imageDescription) {
    super(imageDescription + ": image is closed");
  }
}
