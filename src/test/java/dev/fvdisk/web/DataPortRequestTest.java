package dev.fvdisk.web;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.Example;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.IntRange;

/**
 * The data port's request parser: well-formed heads, in any field order, case and spacing, give the
 * fields they carry; each kind of malformation the parser must refuse (the ones a proxy in front
 * could read differently) is refused wherever it is put.
 */
class DataPortRequestTest {

  /** A well-formed head: its fields in some order, with its expected values. */
  record Head(String text, String range, String authorization, List<String> fieldLines) {}

  @Property(tries = 2000)
  void a_well_formed_head_gives_its_fields(@ForAll("heads") Head head) throws Exception {
    byte[] bytes = head.text().getBytes(StandardCharsets.ISO_8859_1);
    int end = DataPortRequest.headEnd(bytes, 0, bytes.length);
    assertThat(end).isEqualTo(bytes.length);
    DataPortRequest request = DataPortRequest.parse(bytes, 0, end);
    assertThat(request.method).isEqualTo("GET");
    assertThat(request.target).isEqualTo("/api/v1/images/a/data");
    assertThat(request.range).isEqualTo(head.range());
    assertThat(request.authorization).isEqualTo(head.authorization());
    assertThat(request.hasBody()).isFalse();
    assertThat(request.keepAlive()).isTrue();
  }

  @Property(tries = 2000)
  void the_end_of_a_head_is_found_however_its_bytes_arrive(
      @ForAll("heads") Head head, @ForAll @IntRange(min = 1, max = 40) int pieceBytes) {
    // Two heads back to back, as a pipelining client sends them; the connection scans each new
    // piece from three bytes before it, so a CRLFCRLF split across pieces is found too.
    byte[] bytes = (head.text() + head.text()).getBytes(StandardCharsets.ISO_8859_1);
    int filled = 0;
    int scanned = 0;
    int end = -1;
    while (end < 0 && filled < bytes.length) {
      filled = Math.min(bytes.length, filled + pieceBytes);
      end = DataPortRequest.headEnd(bytes, scanned, filled);
      scanned = Math.max(0, filled - 3);
    }
    assertThat(end).isEqualTo(head.text().length());
  }

  /** What a head is broken with, and where in it: each is a way two parsers could disagree. */
  enum Fault {
    BARE_LF,
    LONE_CR,
    OBSOLETE_FOLD,
    SPACE_BEFORE_COLON,
    SECOND_CONTENT_LENGTH,
    SECOND_RANGE,
    SECOND_HOST,
    SECOND_CONTENT_RANGE,
    SECOND_CONTENT_TYPE,
    CONTROL_CHARACTER,
    NAME_WITH_SLASH
  }

  @Property(tries = 3000)
  void a_broken_head_is_refused_wherever_the_fault_is(
      @ForAll("heads") Head head, @ForAll Fault fault, @ForAll @IntRange(max = 20) int where) {
    List<String> lines = new ArrayList<>(head.fieldLines());
    int at = where % (lines.size() + 1);
    switch (fault) {
      case BARE_LF -> lines.add(at, "X-Bare: a\nX-After: b");
      case LONE_CR -> lines.add(at, "X-Lone: a\rb");
      case OBSOLETE_FOLD -> lines.add(at, " folded");
      case SPACE_BEFORE_COLON -> lines.add(at, "Range : bytes=0-1");
      case SECOND_CONTENT_LENGTH -> {
        lines.add(at, "Content-Length: 0");
        lines.add("content-length: 0");
      }
      case SECOND_RANGE -> lines.add(at, "range: bytes=5-6");
      case SECOND_HOST -> lines.add(at, "HOST: other");
      case SECOND_CONTENT_RANGE -> {
        lines.add(at, "Content-Range: bytes 0-0/*");
        lines.add("content-range: bytes 1-1/*");
      }
      case SECOND_CONTENT_TYPE -> {
        lines.add(at, "Content-Type: application/octet-stream");
        lines.add("CONTENT-TYPE: text/plain");
      }
      case CONTROL_CHARACTER -> lines.add(at, "X-Control: a\u0000b");
      case NAME_WITH_SLASH -> lines.add(at, "X/Name: a");
    }
    String text =
        "GET /api/v1/images/a/data HTTP/1.1\r\n" + String.join("\r\n", lines) + "\r\n\r\n";
    byte[] bytes = text.getBytes(StandardCharsets.ISO_8859_1);
    assertThatThrownBy(() -> DataPortRequest.parse(bytes, 0, bytes.length))
        .isInstanceOf(DataPortRequest.Malformed.class);
  }

  @Example
  void request_lines_the_port_does_not_take_are_refused() {
    for (String line :
        List.of(
            "GET http://h/api/v1/images/a/data HTTP/1.1",
            "GET  /api/v1/images/a/data HTTP/1.1",
            "GET /api/v1/images/a/data  HTTP/1.1",
            "GET /api/v1/images/a data HTTP/1.1",
            "GET /api/v1/images/a/data HTTP/2.0",
            "GET /api/v1/images/a/data http/1.1",
            "GE\u0001T /api/v1/images/a/data HTTP/1.1",
            "GET /api/v1/images/\u00e9/data HTTP/1.1",
            "GET",
            "")) {
      byte[] bytes = (line + "\r\nHost: h\r\n\r\n").getBytes(StandardCharsets.ISO_8859_1);
      assertThatThrownBy(() -> DataPortRequest.parse(bytes, 0, bytes.length))
          .as(line)
          .isInstanceOf(DataPortRequest.Malformed.class);
    }
  }

  @Example
  void http_1_1_needs_a_host_and_1_0_does_not() throws Exception {
    byte[] noHost =
        "GET /x HTTP/1.1\r\nRange: bytes=0-1\r\n\r\n".getBytes(StandardCharsets.US_ASCII);
    assertThatThrownBy(() -> DataPortRequest.parse(noHost, 0, noHost.length))
        .hasMessageContaining("Host");
    byte[] old = "GET /x HTTP/1.0\r\n\r\n".getBytes(StandardCharsets.US_ASCII);
    DataPortRequest request = DataPortRequest.parse(old, 0, old.length);
    assertThat(request.keepAlive()).isFalse();
    byte[] oldKept =
        "GET /x HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n".getBytes(StandardCharsets.US_ASCII);
    assertThat(DataPortRequest.parse(oldKept, 0, oldKept.length).keepAlive()).isTrue();
  }

  @Example
  void a_body_or_a_closing_connection_is_seen() throws Exception {
    assertThat(parse("Content-Length: 5").hasBody()).isTrue();
    assertThat(parse("Content-Length: 0").hasBody()).isFalse();
    assertThat(parse("Transfer-Encoding: chunked").hasBody()).isTrue();
    assertThat(parse("Connection: keep-alive, Close").keepAlive()).isFalse();
    assertThatThrownBy(() -> parse("Content-Length: -1"))
        .isInstanceOf(DataPortRequest.Malformed.class);
    assertThatThrownBy(() -> parse("Content-Length: 1,1"))
        .isInstanceOf(DataPortRequest.Malformed.class);
  }

  @Example
  void leading_empty_lines_are_skipped_and_want_content_digest_fields_are_joined()
      throws Exception {
    byte[] bytes =
        ("\r\n\r\nGET /x HTTP/1.1\r\nHost: h\r\nWant-Content-Digest: sha-256=1\r\n"
                + "want-content-digest: sha-512=3\r\n\r\n")
            .getBytes(StandardCharsets.US_ASCII);
    DataPortRequest request = DataPortRequest.parse(bytes, 0, bytes.length);
    assertThat(request.target).isEqualTo("/x");
    assertThat(request.wantContentDigest).isEqualTo("sha-256=1, sha-512=3");
  }

  @Example
  void a_write_head_gives_what_the_write_needs() throws Exception {
    byte[] bytes =
        ("PUT /x?flush=false HTTP/1.1\r\nHost: h\r\nContent-Length: 4096\r\n"
                + "Content-Range: bytes 0-4095/*\r\nContent-Type: application/octet-stream\r\n"
                + "If-Match: \"a\"\r\nif-match: \"b\"\r\nContent-Digest: sha-256=:AA==:\r\n"
                + "Expect: 100-Continue\r\n\r\n")
            .getBytes(StandardCharsets.US_ASCII);
    DataPortRequest request = DataPortRequest.parse(bytes, 0, bytes.length);
    assertThat(request.contentLengthBytes()).isEqualTo(4096);
    assertThat(request.contentRange).isEqualTo("bytes 0-4095/*");
    assertThat(request.contentType).isEqualTo("application/octet-stream");
    assertThat(request.ifMatch).isEqualTo("\"a\", \"b\"");
    assertThat(request.contentDigest).isEqualTo("sha-256=:AA==:");
    assertThat(request.expectContinue).isTrue();
    assertThat(request.transferCoded()).isFalse();
    assertThat(parse("Expect: something-else").expectContinue).isFalse();
    assertThat(parse("Host2: x").contentLengthBytes()).isEqualTo(-1);
    assertThat(parse("Content-Length: 999999999999999999").contentLengthBytes())
        .isEqualTo(999_999_999_999_999_999L);
    // Past what a long holds: refused as a head, not a NumberFormatException later.
    assertThatThrownBy(() -> parse("Content-Length: 9999999999999999999"))
        .isInstanceOf(DataPortRequest.Malformed.class);
    // Leading zeros are the number's, as Tomcat reads them: no body, or a body of 5.
    assertThat(parse("Content-Length: 00").hasBody()).isFalse();
    assertThat(parse("Content-Length: 00").contentLengthBytes()).isZero();
    assertThat(parse("Content-Length: 0000000000000000000000005").contentLengthBytes())
        .isEqualTo(5);
  }

  private static DataPortRequest parse(String field) throws DataPortRequest.Malformed {
    byte[] bytes =
        ("GET /x HTTP/1.1\r\nHost: h\r\n" + field + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII);
    return DataPortRequest.parse(bytes, 0, bytes.length);
  }

  @Provide
  Arbitrary<Head> heads() {
    Arbitrary<String> ows = Arbitraries.of("", " ", "  ", "\t", " \t ");
    Arbitrary<String> range =
        Arbitraries.longs()
            .between(0, 1L << 40)
            .map(first -> "bytes=" + first + "-" + (first + 4095));
    Arbitrary<String> token =
        Arbitraries.strings().alpha().numeric().ofMinLength(1).ofMaxLength(40);
    Arbitrary<List<String>> others =
        Combinators.combine(
                Arbitraries.strings()
                    .withChars("abcdefghijklmnopqrstuvwxyz-")
                    .ofMinLength(1)
                    .ofMaxLength(12)
                    .filter(n -> !isActedOn(n)),
                Arbitraries.strings().withCharRange(' ', '~').ofMaxLength(30).map(String::strip))
            .as((name, value) -> "X-" + name + ": " + value)
            .list()
            .ofMaxSize(6);
    return Combinators.combine(range, token, others, ows, ows, Arbitraries.randoms())
        .as(
            (r, t, extra, before, after, random) -> {
              List<String> fields = new ArrayList<>(extra);
              fields.add(caseOf("Host", random) + ":" + before + "localhost:8089" + after);
              fields.add(caseOf("Range", random) + ":" + before + r + after);
              fields.add(caseOf("Authorization", random) + ":" + after + "Bearer " + t + before);
              java.util.Collections.shuffle(fields, random);
              String text =
                  "GET /api/v1/images/a/data HTTP/1.1\r\n"
                      + String.join("\r\n", fields)
                      + "\r\n\r\n";
              return new Head(text, r, "Bearer " + t, fields);
            });
  }

  private static boolean isActedOn(String name) {
    String n = ("x-" + name).toLowerCase(Locale.ROOT);
    return List.of(
            "host", "range", "authorization", "content-length", "transfer-encoding", "connection")
        .contains(n);
  }

  private static String caseOf(String name, java.util.Random random) {
    return switch (random.nextInt(3)) {
      case 0 -> name;
      case 1 -> name.toLowerCase(Locale.ROOT);
      default -> name.toUpperCase(Locale.ROOT);
    };
  }
}
