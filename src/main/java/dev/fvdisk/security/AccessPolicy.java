package dev.fvdisk.security;

import org.jspecify.annotations.Nullable;

/**
 * Whether a token may do something to an image: the one decision every front door asks before it
 * lets a request reach an image. It knows nothing of Spring or HTTP, so the HTTP authorization
 * rules ({@link ImageAuthorization}) and a later NBD listener decide alike.
 *
 * <p>The role comes first: a token without the role an operation needs is {@linkplain
 * Decision#DENIED denied} whatever the image, so that refusal tells nothing about which images
 * exist. A token with the role is then {@linkplain Decision#HIDDEN hidden} from every image outside
 * its patterns: the front door answers exactly as for an image that does not exist, so names do not
 * leak. Stateless.
 */
public final class AccessPolicy {

  /** What a front door answers. */
  public enum Decision {
    /** The request may go on. */
    GRANTED,
    /** No token, or one without the needed role: refused as such (HTTP 401 or 403). */
    DENIED,
    /** The image is outside the token's patterns: answered as if it did not exist (HTTP 404). */
    HIDDEN
  }

  private AccessPolicy() {}

  /**
   * @param token the authenticated token, or null for a client that presented none
   * @param required the role the operation needs (roles include others, see {@link Role})
   * @param imageName the image the operation touches, or null when it touches none in particular,
   *     such as listing images
   */
  public static Decision decide(
      @Nullable AccessToken token, Role required, @Nullable String imageName) {
    if (token == null || !token.role().includes(required)) {
      return Decision.DENIED;
    }
    if (imageName != null && !token.mayTouch(imageName)) {
      return Decision.HIDDEN;
    }
    return Decision.GRANTED;
  }
}
