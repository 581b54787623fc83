package dev.fvdisk.security;

import java.util.function.Supplier;
import org.jspecify.annotations.Nullable;
import org.springframework.security.authorization.AuthorizationDecision;
import org.springframework.security.authorization.AuthorizationManager;
import org.springframework.security.authorization.AuthorizationResult;
import org.springframework.security.core.Authentication;
import org.springframework.security.web.access.intercept.RequestAuthorizationContext;

/**
 * Grants a request on an image path when the token has the role and the image named by the path
 * variable {@value #NAME} matches the token's patterns. An image outside the patterns is denied
 * with {@link ImageHidden}, which {@link SecurityProblems} answers as 404 instead of 403.
 */
final class ImageAuthorization implements AuthorizationManager<RequestAuthorizationContext> {

  /** The path variable that holds the image name in every image request matcher. */
  static final String NAME = "name";

  private static final AuthorizationDecision GRANTED = new AuthorizationDecision(true);
  private static final AuthorizationDecision DENIED = new AuthorizationDecision(false);

  private final Role role;

  private ImageAuthorization(Role role) {
    this.role = role;
  }

  static ImageAuthorization requires(Role role) {
    return new ImageAuthorization(role);
  }

  @Override
  public AuthorizationResult authorize(
      Supplier<? extends @Nullable Authentication> authentication,
      RequestAuthorizationContext context) {
    AccessToken token =
        authentication.get() instanceof TokenAuthentication t && t.isAuthenticated()
            ? t.token()
            : null;
    // Anonymous requests are denied too; the exception translation turns that into 401.
    if (token == null || !token.role().includes(role)) {
      return DENIED;
    }
    String image = context.getVariables().get(NAME);
    if (image != null && !token.mayTouch(image)) {
      return new ImageHidden(image);
    }
    return GRANTED;
  }

  @Override
  public String toString() {
    return "ImageAuthorization[" + role + "]";
  }

  /** Denied because the image is outside the token's patterns. */
  static final class ImageHidden extends AuthorizationDecision {

    private static final long serialVersionUID = 1L;

    private final String imageName;

    ImageHidden(String imageName) {
      super(false);
      this.imageName = imageName;
    }

    String imageName() {
      return imageName;
    }
  }
}
