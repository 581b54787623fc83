package dev.fvdisk.security;

import java.util.List;
import org.jspecify.annotations.Nullable;
import org.springframework.security.authentication.AbstractAuthenticationToken;

/**
 * A token on its way in (only the presented secret, not yet authenticated) or after {@link
 * TokenAuthenticationProvider} accepted it (the matched {@link AccessToken}, with the role's
 * authorities). The secret is erased once authentication is done.
 */
final class TokenAuthentication extends AbstractAuthenticationToken {

  private static final long serialVersionUID = 1L;

  private @Nullable String secret;
  private final @Nullable AccessToken token;

  private TokenAuthentication(@Nullable String secret, @Nullable AccessToken token) {
    super(token == null ? List.of() : token.role().grantedAuthorities());
    this.secret = secret;
    this.token = token;
    super.setAuthenticated(token != null);
  }

  static TokenAuthentication unauthenticated(String secret) {
    return new TokenAuthentication(secret, null);
  }

  static TokenAuthentication authenticated(AccessToken token) {
    return new TokenAuthentication(null, token);
  }

  /** The matched token; null before authentication. */
  @Nullable AccessToken token() {
    return token;
  }

  @Override
  public @Nullable Object getCredentials() {
    return secret;
  }

  @Override
  public Object getPrincipal() {
    return token == null ? "unauthenticated" : token.name();
  }

  @Override
  public void setAuthenticated(boolean authenticated) {
    if (authenticated) {
      throw new IllegalArgumentException("only TokenAuthenticationProvider authenticates a token");
    }
    super.setAuthenticated(false);
  }

  @Override
  public void eraseCredentials() {
    super.eraseCredentials();
    secret = null;
  }
}
