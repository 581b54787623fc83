package dev.fvdisk.security;

import dev.fvdisk.service.BaseName;
import dev.fvdisk.service.ImageNotFoundException;
import org.jspecify.annotations.Nullable;
import org.springframework.security.access.AccessDeniedException;
import org.springframework.security.core.Authentication;
import org.springframework.security.core.context.SecurityContextHolder;

/**
 * The image names the current request's token may touch, for the two places a request matcher
 * cannot see them: the list of images, and the name and base in the body of a create request. Paths
 * that name an image are checked in the filter chain already. Reads the security context of the
 * calling thread; shared freely.
 */
public final class ImageScope {

  ImageScope() {}

  /** Whether the current token may see and touch this image; false without a token. */
  public boolean permits(String imageName) {
    AccessToken token = currentToken();
    return token != null && token.mayTouch(imageName);
  }

  /**
   * Checks a create request against the token's image patterns.
   *
   * @throws AccessDeniedException (403) when the new image's name is outside the patterns; that
   *     answer does not depend on whether such an image exists
   * @throws ImageNotFoundException (404) when the base is outside the patterns, exactly as if it
   *     did not exist, so the answer does not tell whether it does
   */
  public void checkCreate(String name, @Nullable String base) {
    AccessToken token = currentToken();
    if (token == null || !token.mayTouch(name)) {
      throw new AccessDeniedException(
          "the token may create only images whose names match "
              + (token == null ? "nothing" : token.images()));
    }
    // A snapshot base (golden@s1) is as visible as its image.
    if (base != null && !token.mayTouch(BaseName.parse(base).image())) {
      throw new ImageNotFoundException(BaseName.parse(base).image());
    }
  }

  private static @Nullable AccessToken currentToken() {
    Authentication authentication = SecurityContextHolder.getContext().getAuthentication();
    return authentication instanceof TokenAuthentication tokenAuthentication
        ? tokenAuthentication.token()
        : null;
  }
}
