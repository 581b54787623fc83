package dev.fvdisk.security;

import dev.fvdisk.service.ImageNotFoundException;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import org.springframework.http.HttpHeaders;
import org.springframework.security.access.AccessDeniedException;
import org.springframework.security.authentication.BadCredentialsException;
import org.springframework.security.authentication.InsufficientAuthenticationException;
import org.springframework.security.authorization.AuthorizationDeniedException;
import org.springframework.security.core.Authentication;
import org.springframework.security.core.AuthenticationException;
import org.springframework.security.core.context.SecurityContextHolder;
import org.springframework.security.web.AuthenticationEntryPoint;
import org.springframework.security.web.access.AccessDeniedHandler;
import org.springframework.web.servlet.HandlerExceptionResolver;
import org.springframework.web.servlet.ModelAndView;

/**
 * Answers refusals from the filter chain. Rather than write JSON here, it hands an exception to
 * Spring MVC's exception resolvers, so the web layer's one problem mapper answers 401, 403 and the
 * hiding 404 exactly as it answers everything else (same type URIs, titles, instance, logging).
 */
final class SecurityProblems implements AuthenticationEntryPoint, AccessDeniedHandler {

  private final HandlerExceptionResolver resolver;

  SecurityProblems(HandlerExceptionResolver resolver) {
    this.resolver = resolver;
  }

  @Override
  public void commence(
      HttpServletRequest request, HttpServletResponse response, AuthenticationException e)
      throws IOException {
    response.setHeader(HttpHeaders.WWW_AUTHENTICATE, TokenRegistry.CHALLENGE);
    AuthenticationException answer =
        e instanceof BadCredentialsException
            ? e
            : new InsufficientAuthenticationException(TokenRegistry.TOKEN_NEEDED, e);
    resolve(request, response, answer, HttpServletResponse.SC_UNAUTHORIZED);
  }

  @Override
  public void handle(
      HttpServletRequest request, HttpServletResponse response, AccessDeniedException e)
      throws IOException {
    if (e instanceof AuthorizationDeniedException denied
        && denied.getAuthorizationResult() instanceof ImageAuthorization.ImageHidden hidden) {
      resolve(
          request,
          response,
          new ImageNotFoundException(hidden.imageName()),
          HttpServletResponse.SC_NOT_FOUND);
      return;
    }
    resolve(request, response, new AccessDeniedException(describe(request), e), 403);
  }

  private static String describe(HttpServletRequest request) {
    Authentication authentication = SecurityContextHolder.getContext().getAuthentication();
    String who =
        authentication instanceof TokenAuthentication t && t.token() != null
            ? "token \"" + t.token().name() + "\" (role " + role(t.token()) + ")"
            : "this token";
    return who + " may not " + request.getMethod() + " " + request.getRequestURI();
  }

  private static String role(AccessToken token) {
    return token.role().name().toLowerCase(java.util.Locale.ROOT);
  }

  private void resolve(
      HttpServletRequest request, HttpServletResponse response, Exception e, int fallbackStatus)
      throws IOException {
    ModelAndView resolved = resolver.resolveException(request, response, null, e);
    if (resolved == null && !response.isCommitted()) {
      // Not expected while the web layer's advice exists; still never answer 200.
      response.sendError(fallbackStatus);
    }
  }
}
