package dev.fvdisk.security;

import jakarta.servlet.http.HttpServletRequest;
import org.jspecify.annotations.Nullable;
import org.springframework.http.HttpHeaders;
import org.springframework.security.authentication.BadCredentialsException;

/**
 * Reads the presented token from {@code Authorization} ({@link TokenRegistry#secretOf}). No header
 * means an anonymous request, which authorization then refuses with 401; a header of another
 * scheme, or one that cannot be decoded, is bad credentials (401 at once).
 */
final class TokenCredentialsConverter
    implements org.springframework.security.web.authentication.AuthenticationConverter {

  @Override
  public @Nullable TokenAuthentication convert(HttpServletRequest request) {
    String header = request.getHeader(HttpHeaders.AUTHORIZATION);
    if (header == null) {
      return null;
    }
    try {
      return TokenAuthentication.unauthenticated(TokenRegistry.secretOf(header));
    } catch (IllegalArgumentException e) {
      throw new BadCredentialsException(e.getMessage(), e);
    }
  }
}
