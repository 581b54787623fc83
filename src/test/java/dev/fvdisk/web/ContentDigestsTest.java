package dev.fvdisk.web;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.fvdisk.service.InvalidRequestException;
import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Instant;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.springframework.mock.web.MockHttpServletRequest;

/**
 * The digest fields of RFC 9530 as the data path reads and writes them, and the RFC 9651 dictionary
 * syntax underneath: preferences, zero weights, unknown algorithms, malformed fields, parameters
 * and whitespace.
 */
class ContentDigestsTest {

  private static final byte[] HELLO = "hello".getBytes(StandardCharsets.US_ASCII);

  // SHA-256 and SHA-512 of "hello", from sha256sum and sha512sum.
  private static final String HELLO_SHA_256 = "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=";
  private static final String HELLO_SHA_512 =
      "m3HSJL1i83hdltRq0+o9czGb+8KJDKra4t/3JRlnPKcjI8PZm6XBHXx6zG4UuMXaDEZjR1wuXDre9G9zvN7AQw==";

  @Test
  void the_highest_preference_among_supported_algorithms_wins() {
    assertThat(ContentDigests.preferred("sha-256=1")).isEqualTo(DigestAlgorithm.SHA_256);
    assertThat(ContentDigests.preferred("sha-512=1")).isEqualTo(DigestAlgorithm.SHA_512);
    assertThat(ContentDigests.preferred("sha-256=1, sha-512=3")).isEqualTo(DigestAlgorithm.SHA_512);
    assertThat(ContentDigests.preferred("sha-512=3, sha-256=10"))
        .isEqualTo(DigestAlgorithm.SHA_256);
  }

  @Test
  void equal_preferences_go_to_sha_256_whatever_the_order() {
    assertThat(ContentDigests.preferred("sha-512=5, sha-256=5")).isEqualTo(DigestAlgorithm.SHA_256);
    assertThat(ContentDigests.preferred("sha-256=5, sha-512=5")).isEqualTo(DigestAlgorithm.SHA_256);
  }

  @Test
  void zero_means_not_acceptable() {
    assertThat(ContentDigests.preferred("sha-256=0")).isNull();
    assertThat(ContentDigests.preferred("sha-256=0, sha-512=1")).isEqualTo(DigestAlgorithm.SHA_512);
    assertThat(ContentDigests.preferred("sha-256=0, sha-512=0")).isNull();
  }

  @Test
  void unknown_and_deprecated_algorithms_are_passed_over() {
    assertThat(ContentDigests.preferred("md5=10, unixsum=3")).isNull();
    assertThat(ContentDigests.preferred("md5=10, sha-512=1")).isEqualTo(DigestAlgorithm.SHA_512);
    assertThat(ContentDigests.preferred("")).isNull();
  }

  @Test
  void a_member_whose_value_is_not_a_preference_is_not_counted() {
    assertThat(ContentDigests.preferred("sha-256=11")).isNull();
    assertThat(ContentDigests.preferred("sha-256=-1")).isNull();
    assertThat(ContentDigests.preferred("sha-256=1.5")).isNull();
    assertThat(ContentDigests.preferred("sha-256")).isNull(); // a bare key is the boolean true
    assertThat(ContentDigests.preferred("sha-256=\"1\"")).isNull();
    assertThat(ContentDigests.preferred("sha-256=11, sha-512=2"))
        .isEqualTo(DigestAlgorithm.SHA_512);
  }

  @Test
  void a_malformed_field_asks_for_nothing() {
    assertThat(ContentDigests.preferred("sha-256=1,")).isNull(); // trailing comma
    assertThat(ContentDigests.preferred("SHA-256=1")).isNull(); // keys are lower case
    assertThat(ContentDigests.preferred("sha-256 =1")).isNull();
    assertThat(ContentDigests.preferred("sha-256=1 sha-512=2")).isNull();
    assertThat(ContentDigests.preferred("sha-256=1;")).isNull();
    assertThat(ContentDigests.preferred("sha-256=1234567890123456")).isNull(); // 16 digits
    assertThat(ContentDigests.preferred("\tsha-256=1")).isNull(); // only spaces may lead
  }

  @Test
  void parameters_and_whitespace_around_members_are_taken() {
    assertThat(ContentDigests.preferred("sha-256=1;q=9, sha-512=2"))
        .isEqualTo(DigestAlgorithm.SHA_512);
    assertThat(ContentDigests.preferred("sha-256=3;a;b=?0;c=\"x\", sha-512=2"))
        .isEqualTo(DigestAlgorithm.SHA_256);
    assertThat(ContentDigests.preferred("  sha-256=1 ,\tsha-512=2  "))
        .isEqualTo(DigestAlgorithm.SHA_512);
    assertThat(ContentDigests.preferred("sha-256=1,sha-512=2")).isEqualTo(DigestAlgorithm.SHA_512);
  }

  @Test
  void a_key_named_twice_keeps_its_last_value() {
    assertThat(ContentDigests.preferred("sha-256=1, sha-256=0")).isNull();
    assertThat(ContentDigests.preferred("sha-256=0, sha-256=2")).isEqualTo(DigestAlgorithm.SHA_256);
  }

  @Test
  void header_lines_are_joined_into_one_field_and_head_wants_nothing() {
    MockHttpServletRequest get = new MockHttpServletRequest("GET", "/");
    get.addHeader("Want-Content-Digest", "sha-256=1");
    get.addHeader("Want-Content-Digest", "sha-512=2");
    assertThat(ContentDigests.wanted(get)).isEqualTo(DigestAlgorithm.SHA_512);
    assertThat(ContentDigests.wanted(new MockHttpServletRequest("GET", "/"))).isNull();

    MockHttpServletRequest head = new MockHttpServletRequest("HEAD", "/");
    head.addHeader("Want-Content-Digest", "sha-256=1");
    assertThat(ContentDigests.wanted(head)).isNull();
  }

  @Test
  void a_digest_is_formatted_as_a_byte_sequence() throws Exception {
    byte[] sha256 = MessageDigest.getInstance("SHA-256").digest(HELLO);
    assertThat(ContentDigests.format(DigestAlgorithm.SHA_256, sha256))
        .isEqualTo("sha-256=:" + HELLO_SHA_256 + ":");
    byte[] sha512 = MessageDigest.getInstance("SHA-512").digest(HELLO);
    assertThat(ContentDigests.format(DigestAlgorithm.SHA_512, sha512))
        .isEqualTo("sha-512=:" + HELLO_SHA_512 + ":");
  }

  @Test
  void a_body_matching_its_content_digest_passes() {
    assertMatches("sha-256=:" + HELLO_SHA_256 + ":");
    assertMatches("sha-512=:" + HELLO_SHA_512 + ":");
    assertMatches("sha-256=:" + HELLO_SHA_256 + ":, sha-512=:" + HELLO_SHA_512 + ":");
    // Unknown algorithms are ignored, whatever they hold; parameters too.
    assertMatches("md5=:XUFAKrxLKna5cZ2REBfFkg==:, sha-256=:" + HELLO_SHA_256 + ":;k=1");
    assertMatches("x-custom=(1 2), sha-256=:" + HELLO_SHA_256 + ":");
    // The RFC asks parsers to take a byte sequence without its padding.
    assertMatches("sha-256=:" + HELLO_SHA_256.replace("=", "") + ":");
  }

  @Test
  void every_supported_digest_must_match() {
    String wrongSha512 = Base64.getEncoder().encodeToString(new byte[64]);
    ExpectedDigests digests =
        ExpectedDigests.parse("sha-256=:" + HELLO_SHA_256 + ":, sha-512=:" + wrongSha512 + ":");
    digests.update(ByteBuffer.wrap(HELLO));
    assertThatThrownBy(() -> digests.verify("vm"))
        .isInstanceOf(DigestMismatchException.class)
        .hasMessage(
            "the sha-512 digest of the 5-byte body does not match its Content-Digest;"
                + " nothing was written to image \"vm\"");
  }

  @Test
  void a_digest_of_other_bytes_does_not_match() {
    ExpectedDigests digests = ExpectedDigests.parse("sha-256=:" + HELLO_SHA_256 + ":");
    digests.update(ByteBuffer.wrap("hellO".getBytes(StandardCharsets.US_ASCII)));
    assertThatThrownBy(() -> digests.verify("vm")).isInstanceOf(DigestMismatchException.class);
  }

  @Test
  void the_body_may_come_in_pieces_and_each_piece_stays_readable() {
    ExpectedDigests digests = ExpectedDigests.parse("sha-256=:" + HELLO_SHA_256 + ":");
    ByteBuffer he = ByteBuffer.wrap(HELLO, 0, 2);
    digests.update(he);
    assertThat(he.remaining()).isEqualTo(2);
    digests.update(ByteBuffer.wrap(HELLO, 2, 3));
    digests.verify("vm");
  }

  @Test
  void a_content_digest_naming_no_supported_algorithm_is_refused_with_the_supported_ones() {
    for (String field : List.of("md5=:XUFAKrxLKna5cZ2REBfFkg==:", "", "unixsum=1")) {
      assertThatThrownBy(() -> ExpectedDigests.parse(field))
          .as(field)
          .isInstanceOf(InvalidRequestException.class)
          .hasMessageContaining("names no supported algorithm")
          .hasMessageContaining("sha-256, sha-512");
    }
  }

  @Test
  void a_malformed_content_digest_is_refused() {
    for (String field :
        List.of(
            "sha-256=" + HELLO_SHA_256, // no colons
            "sha-256=:" + HELLO_SHA_256, // not closed
            "sha-256=:abc!:", // outside base64
            "sha-256=:a:", // one character is no byte
            "sha-256=:" + HELLO_SHA_256 + ":,",
            "Sha-256=:" + HELLO_SHA_256 + ":",
            "sha-256=:" + HELLO_SHA_256 + ": sha-512=:" + HELLO_SHA_512 + ":")) {
      assertThatThrownBy(() -> ExpectedDigests.parse(field))
          .as(field)
          .isInstanceOf(InvalidRequestException.class)
          .hasMessageContaining("not a structured-field dictionary")
          .hasMessageContaining("sha-256, sha-512");
    }
  }

  @Test
  void a_supported_algorithm_must_hold_a_byte_sequence() {
    for (String field : List.of("sha-256=1", "sha-256", "sha-256=\"LPJN\"", "sha-256=(:AA==:)")) {
      assertThatThrownBy(() -> ExpectedDigests.parse(field))
          .as(field)
          .isInstanceOf(InvalidRequestException.class)
          .hasMessageContaining("not a byte sequence");
    }
  }

  @Test
  void every_item_type_of_rfc_9651_is_read() {
    Map<String, Object> members =
        StructuredDictionary.parse(
            "i=-42, d=3.14, s=\"a \\\"q\\\" \\\\\", t=text/plain, b=:AQID:, y=?1, n=?0,"
                + " at=@1659578233, ds=%\"f%c3%bc\", l=(1 \"two\" three);p=1, e=(), flag;x=y");
    assertThat(members)
        .containsKeys("i", "d", "s", "t", "b", "y", "n", "at", "ds", "l", "e", "flag");
    assertThat(members.get("i")).isEqualTo(-42L);
    assertThat(members.get("d")).isEqualTo(new BigDecimal("3.14"));
    assertThat(members.get("s")).isEqualTo("a \"q\" \\");
    assertThat(members.get("t")).isEqualTo(new StructuredDictionary.Token("text/plain"));
    assertThat((byte[]) members.get("b")).containsExactly(1, 2, 3);
    assertThat(members.get("y")).isEqualTo(true);
    assertThat(members.get("n")).isEqualTo(false);
    assertThat(members.get("at")).isEqualTo(Instant.ofEpochSecond(1659578233));
    assertThat(members.get("ds")).isEqualTo("f\u00fc");
    assertThat(members.get("l"))
        .isEqualTo(List.of(1L, "two", new StructuredDictionary.Token("three")));
    assertThat(members.get("e")).isEqualTo(List.of());
    assertThat(members.get("flag")).isEqualTo(true);
  }

  @Test
  void malformed_items_are_refused_with_their_place() {
    for (String field :
        List.of(
            "a=1.", // a decimal needs a fraction digit
            "a=1.2345", // at most three
            "a=1234567890123.5", // at most twelve integer digits
            "a=\"open",
            "a=\"bad \\n escape\"",
            "a=?2",
            "a=@1.5",
            "a=%\"%C3%BC\"", // hex digits are lower case
            "a=%\"%ff\"", // not UTF-8
            "a=(1 2",
            "a=(1,2)",
            "a=#",
            "a=1,,b=2",
            "=1")) {
      assertThatThrownBy(() -> StructuredDictionary.parse(field))
          .as(field)
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("at character");
    }
  }

  private static void assertMatches(String field) {
    ExpectedDigests digests = ExpectedDigests.parse(field);
    digests.update(ByteBuffer.wrap(HELLO));
    digests.verify("vm");
  }
}
