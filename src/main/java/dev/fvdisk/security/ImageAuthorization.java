package dev.fvdisk.security;

import java.util.Objects;
import java.util.function.Supplier;
import org.jspecify.annotations.Nullable;
import org.springframework.security.authorization.AuthorizationDecision;
import org.springframework.security.authorization.AuthorizationManager;
import org.springframework.security.authorization.AuthorizationResult;
import org.springframework.security.core.Authentication;
import org.springframework.security.web.access.intercept.RequestAuthorizationContext;

/**
 * Spring Security's face of the {@link AccessPolicy}: grants a request on an image path when the
 * policy grants its token the role for the image named by the path variable {@value #NAME}. An
 * image the policy hides is denied with {@link ImageHidden}, which {@link SecurityProblems} answers
 * as 404 instead of 403.
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
    String image = context.getVariables().get(NAME);
    return switch (AccessPolicy.decide(token, role, image)) {
      case GRANTED -> GRANTED;
      // Anonymous requests are denied too; the exception translation turns that into 401.
      case DENIED -> DENIED;
      case HIDDEN -> new ImageHidden(Objects.requireNonNull(image, "only a named image is hidden"));
    };
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
