package dev.fvdisk.security;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import javax.security.auth.x500.X500Principal;
import org.jspecify.annotations.Nullable;

/**
 * The configured tokens, looked up by the digest of a presented secret. Immutable and safe to share
 * between threads.
 *
 * <p>Only SHA-256 digests are kept. A lookup hashes the presented secret and compares it with every
 * token's digest in constant time, without stopping at the first match, so neither the position of
 * a match nor the length of a common prefix shows in the response time. A plain, unsalted hash is
 * enough here because tokens are long random strings, not passwords a person picked: there is no
 * dictionary to run against a leaked digest.
 */
public final class TokenRegistry {

  private static final int SHA256_HEX_DIGITS = 64;

  private final List<AccessToken> tokens;
  private final Map<X500Principal, AccessToken> byCertificateSubject;

  private TokenRegistry(
      List<AccessToken> tokens, Map<X500Principal, AccessToken> byCertificateSubject) {
    this.byCertificateSubject = Map.copyOf(byCertificateSubject);
    this.tokens = List.copyOf(tokens);
  }

  /**
   * Checks and digests the configured tokens.
   *
   * @throws IllegalArgumentException naming the token ({@code fvdisk.security.tokens[i]}) that has
   *     no role, both or neither of secret and secret-sha256, a malformed digest, an empty image
   *     pattern, or a name or secret that another token already has
   */
  static TokenRegistry of(SecurityProperties properties) {
    List<AccessToken> tokens = new ArrayList<>();
    Map<X500Principal, AccessToken> bySubject = new HashMap<>();
    Set<String> names = new HashSet<>();
    Set<String> digests = new HashSet<>();
    List<SecurityProperties.Token> configured = properties.tokens();
    for (int i = 0; i < configured.size(); i++) {
      SecurityProperties.Token token = configured.get(i);
      String where = "fvdisk.security.tokens[" + i + "]";
      String name = token.name() == null || token.name().isBlank() ? "token-" + i : token.name();
      if (!names.add(name)) {
        throw new IllegalArgumentException(where + ": another token is already named " + name);
      }
      if (token.role() == null) {
        throw new IllegalArgumentException(
            where + " (" + name + "): role is required (admin, writer, reader or monitor)");
      }
      byte[] digest = digestOf(token, where + " (" + name + ")");
      if (!digests.add(java.util.HexFormat.of().formatHex(digest))) {
        throw new IllegalArgumentException(
            where + " (" + name + "): another token has the same secret");
      }
      ImageGlob images;
      try {
        images = ImageGlob.of(token.images());
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException(where + " (" + name + "): " + e.getMessage(), e);
      }
      AccessToken accessToken = new AccessToken(name, token.role(), images, digest);
      tokens.add(accessToken);
      String subject = token.certificateSubject();
      if (subject != null && !subject.isBlank()) {
        X500Principal principal;
        try {
          principal = new X500Principal(subject);
        } catch (IllegalArgumentException e) {
          throw new IllegalArgumentException(
              where
                  + " ("
                  + name
                  + "): certificate-subject is not a distinguished name: "
                  + e.getMessage(),
              e);
        }
        if (bySubject.put(principal, accessToken) != null) {
          throw new IllegalArgumentException(
              where + " (" + name + "): another token has the same certificate-subject");
        }
      }
    }
    return new TokenRegistry(tokens, bySubject);
  }

  private static byte[] digestOf(SecurityProperties.Token token, String where) {
    String secret = token.secret();
    String hex = token.secretSha256();
    boolean hasSecret = secret != null && !secret.isEmpty();
    boolean hasHex = hex != null && !hex.isEmpty();
    if (hasSecret == hasHex) {
      throw new IllegalArgumentException(
          where
              + ": give exactly one of secret and secret-sha256, not "
              + (hasSecret ? "both" : "neither"));
    }
    if (hasSecret) {
      return sha256(secret);
    }
    String digits = hex.trim();
    if (digits.length() != SHA256_HEX_DIGITS || !digits.matches("[0-9a-fA-F]+")) {
      throw new IllegalArgumentException(
          where
              + ": secret-sha256 must be "
              + SHA256_HEX_DIGITS
              + " hex digits (the output of sha256sum), got "
              + digits.length()
              + " characters");
    }
    return java.util.HexFormat.of().parseHex(digits);
  }

  /**
   * The token a TLS client certificate with this subject acts as (NBD), if any. Distinguished names
   * compare in their canonical form, so spacing and the case of attribute names do not matter.
   */
  public Optional<AccessToken> forCertificateSubject(X500Principal subject) {
    return Optional.ofNullable(byCertificateSubject.get(subject));
  }

  /** The challenge of a 401: both schemes the service takes; QEMU's curl driver answers Basic. */
  public static final String CHALLENGE = "Basic realm=\"fvdisk\", Bearer";

  /** What a 401 says when no token was presented. */
  public static final String TOKEN_NEEDED =
      "this request needs an access token: send Authorization: Bearer <token>, or HTTP Basic with"
          + " the token as password";

  private static final String BASIC = "basic ";
  private static final String BEARER = "bearer ";

  /**
   * The caller an {@code Authorization} header names, for a front door outside Spring Security (the
   * data port); the HTTP filter chain decides the same way. Without configured tokens every caller
   * is the trusted local client, whatever it sends, as {@link TrustedLoopbackFilter} makes it.
   *
   * @param authorization the header's value, or null when the request has none
   * @throws IllegalArgumentException saying why the caller is not authenticated (answer 401)
   */
  public AccessToken authenticate(@Nullable String authorization) {
    if (tokens.isEmpty()) {
      return TrustedLoopbackFilter.TRUSTED;
    }
    if (authorization == null) {
      throw new IllegalArgumentException(TOKEN_NEEDED);
    }
    return find(secretOf(authorization))
        .orElseThrow(() -> new IllegalArgumentException("unknown token"));
  }

  /**
   * The secret an {@code Authorization} header presents: {@code Bearer <secret>}, or HTTP Basic
   * with the secret as password and any user name (QEMU's HTTP driver can send only Basic).
   *
   * @throws IllegalArgumentException for another scheme, undecodable Basic credentials or an empty
   *     secret
   */
  static String secretOf(String authorization) {
    String value = authorization.trim();
    // Scheme names are case-insensitive (RFC 9110, section 11.1).
    String lower = value.toLowerCase(java.util.Locale.ROOT);
    String secret;
    if (lower.startsWith(BEARER)) {
      secret = value.substring(BEARER.length()).trim();
    } else if (lower.startsWith(BASIC)) {
      secret = basicPassword(value.substring(BASIC.length()).trim());
    } else {
      throw new IllegalArgumentException("Authorization must use the Basic or Bearer scheme");
    }
    if (secret.isEmpty()) {
      throw new IllegalArgumentException("the token is empty");
    }
    return secret;
  }

  private static String basicPassword(String encoded) {
    String decoded;
    try {
      decoded = new String(java.util.Base64.getDecoder().decode(encoded), StandardCharsets.UTF_8);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("Basic credentials are not valid Base64", e);
    }
    // user-id ":" password (RFC 7617); the user id cannot hold a colon, the password can.
    int colon = decoded.indexOf(':');
    if (colon < 0) {
      throw new IllegalArgumentException("Basic credentials need user:password");
    }
    return decoded.substring(colon + 1);
  }

  /** Whether no tokens are configured: then nothing is authenticated. */
  public boolean isEmpty() {
    return tokens.isEmpty();
  }

  int size() {
    return tokens.size();
  }

  List<AccessToken> tokens() {
    return tokens;
  }

  /** The token whose secret this is; empty when none is. */
  Optional<AccessToken> find(String secret) {
    byte[] presented = sha256(secret);
    @Nullable AccessToken match = null;
    for (AccessToken token : tokens) {
      // No early exit: every token costs the same comparison whether or not one matched already.
      if (MessageDigest.isEqual(token.secretSha256(), presented) && match == null) {
        match = token;
      }
    }
    return Optional.ofNullable(match);
  }

  static byte[] sha256(String secret) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(secret.getBytes(StandardCharsets.UTF_8));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every Java platform has SHA-256", e);
    }
  }
}
