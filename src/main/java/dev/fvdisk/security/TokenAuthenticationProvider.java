package dev.fvdisk.security;

import org.springframework.security.authentication.AuthenticationProvider;
import org.springframework.security.authentication.BadCredentialsException;
import org.springframework.security.core.Authentication;

/**
 * Accepts a presented secret when it belongs to a configured token. Being an {@link
 * AuthenticationProvider} bean also tells Spring Boot not to invent a default user with a generated
 * password.
 */
final class TokenAuthenticationProvider implements AuthenticationProvider {

  private final TokenRegistry registry;

  TokenAuthenticationProvider(TokenRegistry registry) {
    this.registry = registry;
  }

  @Override
  public Authentication authenticate(Authentication authentication) {
    Object secret = authentication.getCredentials();
    if (!(secret instanceof String presented)) {
      throw new BadCredentialsException("no token presented");
    }
    return registry
        .find(presented)
        .map(TokenAuthentication::authenticated)
        .orElseThrow(() -> new BadCredentialsException("unknown token"));
  }

  @Override
  public boolean supports(Class<?> authentication) {
    return TokenAuthentication.class.isAssignableFrom(authentication);
  }
}
