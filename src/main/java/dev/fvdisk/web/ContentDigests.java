package dev.fvdisk.web;

import jakarta.servlet.http.HttpServletRequest;
import java.util.Base64;
import java.util.Enumeration;
import java.util.Map;
import java.util.StringJoiner;
import org.jspecify.annotations.Nullable;
import org.springframework.http.HttpMethod;

/**
 * The digest fields of RFC 9530 on the read side: which algorithm a reader asks for in {@code
 * Want-Content-Digest}, and the {@code Content-Digest} the answer then carries. The write side's
 * {@code Content-Digest} is {@link ExpectedDigests}. Stateless.
 */
final class ContentDigests {

  static final String CONTENT_DIGEST = "Content-Digest";
  static final String WANT_CONTENT_DIGEST = "Want-Content-Digest";

  private static final long MAX_PREFERENCE = 10;

  private ContentDigests() {}

  /**
   * The algorithm of the digest a read's answer carries, or null for none. A {@code HEAD} gets
   * none: its digest would cost reading the whole range for an answer without a body.
   */
  static @Nullable DigestAlgorithm wanted(HttpServletRequest request) {
    if (HttpMethod.HEAD.matches(request.getMethod())) {
      return null;
    }
    String field = field(request, WANT_CONTENT_DIGEST);
    return field == null ? null : preferred(field);
  }

  /**
   * The supported algorithm with the highest preference in a {@code Want-Content-Digest} field;
   * equal preferences go to sha-256. Preferences are integers from 1 to 10; 0 says "not
   * acceptable", and a member with any other value is not a preference. Null when no supported
   * algorithm is acceptable or the field is malformed: the field only states a wish, so a read
   * never fails over it.
   */
  static @Nullable DigestAlgorithm preferred(String field) {
    Map<String, Object> members;
    try {
      members = StructuredDictionary.parse(field);
    } catch (IllegalArgumentException malformed) {
      return null;
    }
    DigestAlgorithm best = null;
    long bestPreference = 0;
    for (DigestAlgorithm algorithm : DigestAlgorithm.values()) {
      if (members.get(algorithm.key()) instanceof Long preference
          && preference <= MAX_PREFERENCE
          && preference > bestPreference) {
        best = algorithm;
        bestPreference = preference;
      }
    }
    return best;
  }

  /** The {@code Content-Digest} value for one digest, for example {@code sha-256=:LPJN…mCQ=:}. */
  static String format(DigestAlgorithm algorithm, byte[] digest) {
    return algorithm.key() + "=:" + Base64.getEncoder().encodeToString(digest) + ":";
  }

  /**
   * All lines of a request header as one field, joined with commas as RFC 9651 combines them; null
   * when the request does not have it.
   */
  static @Nullable String field(HttpServletRequest request, String name) {
    Enumeration<String> lines = request.getHeaders(name);
    if (lines == null || !lines.hasMoreElements()) {
      return null;
    }
    StringJoiner field = new StringJoiner(", ");
    while (lines.hasMoreElements()) {
      field.add(lines.nextElement());
    }
    return field.toString();
  }
}
