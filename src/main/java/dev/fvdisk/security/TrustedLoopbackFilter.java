package dev.fvdisk.security;

import jakarta.servlet.Filter;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.ServletRequest;
import jakarta.servlet.ServletResponse;
import java.io.IOException;
import org.springframework.security.core.context.SecurityContext;
import org.springframework.security.core.context.SecurityContextHolder;
import org.springframework.security.core.context.SecurityContextHolderStrategy;

/**
 * Without configured tokens, every request acts as an admin with every image in scope. {@link
 * ListenAddressGuard} makes sure that then only loopback clients (or, by the operator's explicit
 * choice, a trusted network) can connect. Going through the same authorization rules, rather than
 * switching them off, keeps one code path and lets health details show as they would for an admin.
 * A plain filter: running it twice in one request changes nothing, so the bookkeeping of a
 * once-per-request filter (three request attribute calls) would be wasted on every request.
 */
final class TrustedLoopbackFilter implements Filter {

  static final AccessToken TRUSTED =
      new AccessToken("unauthenticated", Role.ADMIN, ImageGlob.ANY, new byte[0]);

  private final SecurityContextHolderStrategy contexts =
      SecurityContextHolder.getContextHolderStrategy();

  @Override
  public void doFilter(ServletRequest request, ServletResponse response, FilterChain chain)
      throws ServletException, IOException {
    if (contexts.getContext().getAuthentication() == null) {
      SecurityContext context = contexts.createEmptyContext();
      context.setAuthentication(TokenAuthentication.authenticated(TRUSTED));
      contexts.setContext(context);
    }
    chain.doFilter(request, response);
  }
}
