package dev.fvdisk.web;

import dev.fvdisk.service.InvalidRequestException;
import jakarta.servlet.http.HttpServletRequest;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.util.EnumMap;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * The {@code Content-Digest} of a write's body (RFC 9530): one expected digest for each supported
 * algorithm the field names, checked against the body as it comes in. Every one of them must match;
 * members of algorithms we do not support are ignored, as the RFC lets a recipient do. One per
 * request; not thread-safe.
 */
final class ExpectedDigests {

  private final Map<DigestAlgorithm, byte[]> expected;
  private final Map<DigestAlgorithm, MessageDigest> running = new EnumMap<>(DigestAlgorithm.class);
  private long lengthBytes;

  private ExpectedDigests(Map<DigestAlgorithm, byte[]> expected) {
    this.expected = expected;
    expected.keySet().forEach(algorithm -> running.put(algorithm, algorithm.newDigest()));
  }

  /**
   * The digests the request's body must have; null when it has no {@code Content-Digest}.
   *
   * @throws InvalidRequestException when the field is malformed or names no supported algorithm
   */
  static @Nullable ExpectedDigests of(HttpServletRequest request) {
    String field = ContentDigests.field(request, ContentDigests.CONTENT_DIGEST);
    return field == null ? null : parse(field);
  }

  /**
   * The digests a {@code Content-Digest} field names, such as {@code sha-256=:LPJN…mCQ=:}.
   *
   * @throws InvalidRequestException when the field is not a dictionary, a supported algorithm's
   *     value is not a byte sequence, or no supported algorithm is named
   */
  static ExpectedDigests parse(String field) {
    Map<String, Object> members;
    try {
      members = StructuredDictionary.parse(field);
    } catch (IllegalArgumentException e) {
      throw invalid("is not a structured-field dictionary: " + e.getMessage());
    }
    Map<DigestAlgorithm, byte[]> expected = new EnumMap<>(DigestAlgorithm.class);
    for (DigestAlgorithm algorithm : DigestAlgorithm.values()) {
      Object value = members.get(algorithm.key());
      if (value instanceof byte[] digest) {
        expected.put(algorithm, digest);
      } else if (value != null) {
        throw invalid(
            "gives " + algorithm.key() + " a value that is not a byte sequence (:base64:)");
      }
    }
    if (expected.isEmpty()) {
      throw invalid("names no supported algorithm");
    }
    return new ExpectedDigests(expected);
  }

  /** Adds the remaining bytes of {@code data} to every digest; its position stays where it was. */
  void update(ByteBuffer data) {
    int position = data.position();
    lengthBytes += data.remaining();
    for (MessageDigest digest : running.values()) {
      digest.update(data);
      data.position(position);
    }
  }

  /**
   * Checks the bytes given to {@link #update} against every expected digest.
   *
   * @param image the image the body was for, named in the problem
   * @throws DigestMismatchException when one of them differs
   */
  void verify(String image) {
    for (Map.Entry<DigestAlgorithm, MessageDigest> digest : running.entrySet()) {
      DigestAlgorithm algorithm = digest.getKey();
      if (!MessageDigest.isEqual(digest.getValue().digest(), expected.get(algorithm))) {
        throw new DigestMismatchException(algorithm, lengthBytes, image);
      }
    }
  }

  private static InvalidRequestException invalid(String what) {
    return new InvalidRequestException(
        "Content-Digest "
            + what
            + "; the supported algorithms are "
            + DigestAlgorithm.SUPPORTED
            + ", as in sha-256=:<base64 of the body's SHA-256>:");
  }
}
