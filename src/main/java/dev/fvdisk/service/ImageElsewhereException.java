package dev.fvdisk.service;

import org.jspecify.annotations.Nullable;

/**
 * Another service instance serves the image now: it holds the image's lease and renewed it in time.
 * Over HTTP the client is sent there ({@code 307} to {@link #ownerUrl()}); an NBD client is told in
 * the handshake.
 */
public class ImageElsewhereException extends ServiceException {

  private static final long serialVersionUID = 1L;

  private final String ownerUrl;
  private final transient @Nullable ImageDescriptor descriptor;

  public ImageElsewhereException(
      String image, String ownerNode, String ownerUrl, @Nullable ImageDescriptor descriptor) {
    super(
        "image \""
            + image
            + "\" is served by instance \""
            + ownerNode
            + "\" at "
            + ownerUrl
            + "; send the request there");
    this.ownerUrl = ownerUrl;
    this.descriptor = descriptor;
    with("image", image);
    with("node", ownerNode);
    with("url", ownerUrl);
  }

  /** The owner's advertised base URL, such as {@code http://10.0.0.2:8080}. */
  public String ownerUrl() {
    return ownerUrl;
  }

  /** What the owner last published about the image, for listings; null before its first renewal. */
  @Nullable ImageDescriptor descriptor() {
    return descriptor;
  }
}
