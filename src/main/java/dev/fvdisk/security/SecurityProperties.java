package dev.fvdisk.security;

import java.util.List;
import org.jspecify.annotations.Nullable;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;

/**
 * Everything under {@code fvdisk.security.*}. Checked by {@link TokenRegistry#of}, which names the
 * offending token in its message.
 *
 * @param tokens the access tokens; none (the default) means no authentication, which the service
 *     allows only on loopback unless {@code allowUnauthenticated} is set
 * @param allowUnauthenticated lets a service without tokens listen on a non-loopback address, for a
 *     network the operator trusts completely; default false, and loudly logged when true
 */
@ConfigurationProperties("fvdisk.security")
public record SecurityProperties(
    @DefaultValue List<Token> tokens, @DefaultValue("false") boolean allowUnauthenticated) {

  /**
   * One access token.
   *
   * @param name shown in logs and problem details instead of the secret; default {@code token-<i>}
   * @param secret the token itself, as clients send it; give this or {@code secretSha256}
   * @param secretSha256 the SHA-256 of the secret as 64 hex digits, so configuration need not hold
   *     the secret at all
   * @param role what the token may do; required
   * @param images glob patterns ({@code *} and {@code ?}) of the image names the token may touch;
   *     several are separated by commas; default {@code *}, every image
   * @param certificateSubject the subject of a TLS client certificate that acts as this token over
   *     NBD, as a distinguished name ({@code CN=host-1,O=example}); optional
   */
  public record Token(
      @Nullable String name,
      @Nullable String secret,
      @Nullable String secretSha256,
      @Nullable Role role,
      @DefaultValue("*") List<String> images,
      @Nullable String certificateSubject) {

    // Records print every component; a token's secret must never reach a log line.
    @Override
    public String toString() {
      return "Token[name="
          + name
          + ", role="
          + role
          + ", images="
          + images
          + ", certificateSubject="
          + certificateSubject
          + "]";
    }
  }
}
