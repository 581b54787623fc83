package dev.fvdisk.security;

import jakarta.servlet.http.HttpServletRequest;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import org.jspecify.annotations.Nullable;
import org.springframework.http.HttpHeaders;
import org.springframework.security.authentication.BadCredentialsException;

/**
 * Reads the presented token from {@code Authorization}: {@code Bearer <secret>}, or HTTP Basic with
 * the secret as password and any user name (QEMU's HTTP driver can send only Basic). No header
 * means an anonymous request, which authorization then refuses with 401; a header of another
 * scheme, or one that cannot be decoded, is bad credentials (401 at once).
 */
final class TokenCredentialsConverter
    implements org.springframework.security.web.authentication.AuthenticationConverter {

  private static final String BASIC = "basic ";
  private static final String BEARER = "bearer ";

  @Override
  public @Nullable TokenAuthentication convert(HttpServletRequest request) {
    String header = request.getHeader(HttpHeaders.AUTHORIZATION);
    if (header == null) {
      return null;
    }
    String value = header.trim();
    // Scheme names are case-insensitive (RFC 9110, section 11.1).
    String lower = value.toLowerCase(java.util.Locale.ROOT);
    if (lower.startsWith(BEARER)) {
      return credentials(value.substring(BEARER.length()).trim());
    }
    if (lower.startsWith(BASIC)) {
      return credentials(basicPassword(value.substring(BASIC.length()).trim()));
    }
    throw new BadCredentialsException("Authorization must use the Basic or Bearer scheme");
  }

  private static TokenAuthentication credentials(String secret) {
    if (secret.isEmpty()) {
      throw new BadCredentialsException("the token is empty");
    }
    return TokenAuthentication.unauthenticated(secret);
  }

  private static String basicPassword(String encoded) {
    String decoded;
    try {
      decoded = new String(Base64.getDecoder().decode(encoded), StandardCharsets.UTF_8);
    } catch (IllegalArgumentException e) {
      throw new BadCredentialsException("Basic credentials are not valid Base64");
    }
    // user-id ":" password (RFC 7617); the user id cannot hold a colon, the password can.
    int colon = decoded.indexOf(':');
    if (colon < 0) {
      throw new BadCredentialsException("Basic credentials need user:password");
    }
    return decoded.substring(colon + 1);
  }
}
