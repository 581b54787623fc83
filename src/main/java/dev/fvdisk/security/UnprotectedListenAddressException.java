package dev.fvdisk.security;

/**
 * Thrown at start-up when the service would listen on a non-loopback address without any access
 * token; {@link UnprotectedListenAddressFailureAnalyzer} explains the ways out.
 */
public final class UnprotectedListenAddressException extends RuntimeException {

  private static final long serialVersionUID = 1L;

  private final String address;

  UnprotectedListenAddressException(String address) {
    super(
        "Refusing to listen on "
            + address
            + " without access tokens: anyone who can reach that address could read, overwrite"
            + " and delete every image. Configure fvdisk.security.tokens, listen on loopback"
            + " (server.address=127.0.0.1), or set fvdisk.security.allow-unauthenticated=true on a"
            + " network you trust completely.");
    this.address = address;
  }

  /** The configured {@code server.address}. */
  public String address() {
    return address;
  }
}
