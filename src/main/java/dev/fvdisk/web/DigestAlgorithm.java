package dev.fvdisk.web;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.stream.Collectors;
import org.jspecify.annotations.Nullable;

/**
 * The digest algorithms of RFC 9530 the data path computes and checks: the two the IANA registry
 * marks as active. The deprecated ones (md5, sha, unixsum, ...) are treated as unknown.
 */
enum DigestAlgorithm {
  SHA_256("sha-256", "SHA-256"),
  SHA_512("sha-512", "SHA-512");

  /** The supported keys, for problem details: {@code sha-256, sha-512}. */
  static final String SUPPORTED =
      Arrays.stream(values()).map(DigestAlgorithm::key).collect(Collectors.joining(", "));

  private final String key;
  private final String javaName;

  DigestAlgorithm(String key, String javaName) {
    this.key = key;
    this.javaName = javaName;
  }

  /** The algorithm's key in {@code Content-Digest} and {@code Want-Content-Digest}. */
  String key() {
    return key;
  }

  /** A fresh digest; every Java runtime has both algorithms. */
  MessageDigest newDigest() {
    try {
      return MessageDigest.getInstance(javaName);
    } catch (NoSuchAlgorithmException impossible) {
      throw new IllegalStateException(impossible);
    }
  }

  /** The algorithm with this key (keys are lower case, compared exactly); null when unknown. */
  static @Nullable DigestAlgorithm ofKey(String key) {
    for (DigestAlgorithm algorithm : values()) {
      if (algorithm.key.equals(key)) {
        return algorithm;
      }
    }
    return null;
  }
}
