package dev.fvdisk.web;

import java.nio.charset.StandardCharsets;
import org.jspecify.annotations.Nullable;

/**
 * The head of one request on the data port ({@link DataPortServer}), parsed strictly after RFC
 * 9112: anything the port does not understand exactly is a {@link Malformed} request, answered 400
 * with the connection closed, so that no request can mean one thing here and another to a proxy in
 * front (request smuggling). Only the fields the port acts on are kept.
 *
 * <p>Refused: a line ending in a bare LF, whitespace before a field's colon or in a method,
 * obsolete line folding, control characters, a request target that is not a plain path, an HTTP
 * version other than 1.0 and 1.1, a second {@code Host}, {@code Range}, {@code Authorization},
 * {@code Content-Length}, {@code Content-Range} or {@code Content-Type}, a {@code Content-Length}
 * of more than 18 digits after its leading zeros, and HTTP/1.1 without {@code Host}. The body is
 * not read here: {@link #hasBody()} says when the head announces one, and a write reads it after
 * the head.
 */
final class DataPortRequest {

  /** The longest head taken, as the main port's {@code server.max-http-request-header-size}. */
  static final int MAX_HEAD_BYTES = 8192;

  /** The most header fields in one head. */
  static final int MAX_FIELDS = 100;

  final String method;
  final String target;
  final boolean http11;
  @Nullable String range;
  @Nullable String authorization;
  @Nullable String wantContentDigest;
  @Nullable String contentRange;
  @Nullable String contentType;
  @Nullable String ifMatch;
  @Nullable String contentDigest;

  /** Whether the client waits for {@code 100 Continue} before it sends the body. */
  boolean expectContinue;

  private @Nullable String host;
  private @Nullable String contentLength;

  /** The value of {@code Content-Length}, or -1 without one. */
  private long contentLengthBytes = -1;

  private boolean transferEncoding;
  private boolean connectionClose;
  private boolean connectionKeepAlive;

  private DataPortRequest(String method, String target, boolean http11) {
    this.method = method;
    this.target = target;
    this.http11 = http11;
  }

  /** Whether the head announces a body: a {@code Content-Length} above 0, or any coding. */
  boolean hasBody() {
    return transferEncoding || contentLengthBytes > 0;
  }

  /** Whether the body has a transfer coding (chunked): its length is not known up front. */
  boolean transferCoded() {
    return transferEncoding;
  }

  /** The body's {@code Content-Length}, or -1 when the head has none. */
  long contentLengthBytes() {
    return contentLengthBytes;
  }

  /** Whether the connection stays open after the answer, by HTTP/1.1's and 1.0's defaults. */
  boolean keepAlive() {
    return http11 ? !connectionClose : connectionKeepAlive && !connectionClose;
  }

  /** A head the port refuses; its message says why (the detail of the 400). */
  static final class Malformed extends Exception {
    private static final long serialVersionUID = 1L;

    Malformed(String message) {
      super(message, null, false, false);
    }
  }

  /**
   * The index just past the blank line that ends the head in {@code bytes[0, length)}, or -1 while
   * it is incomplete; the search starts with a terminator ending at {@code from}. Empty lines
   * before the request line must be dropped first, or they would look like the end.
   */
  static int headEnd(byte[] bytes, int from, int length) {
    for (int i = Math.max(3, from); i < length; i++) {
      if (bytes[i] == '\n'
          && bytes[i - 1] == '\r'
          && bytes[i - 2] == '\n'
          && bytes[i - 3] == '\r') {
        return i + 1;
      }
    }
    return -1;
  }

  /**
   * Parses the head in {@code bytes[start, end)}, which ends with its blank line ({@link
   * #headEnd}).
   */
  static DataPortRequest parse(byte[] bytes, int start, int end) throws Malformed {
    int at = start;
    while (at + 1 < end && bytes[at] == '\r' && bytes[at + 1] == '\n') {
      at += 2;
    }
    int lineEnd = lineEnd(bytes, at, end);
    int firstSpace = indexOf(bytes, (byte) ' ', at, lineEnd);
    int secondSpace = firstSpace < 0 ? -1 : indexOf(bytes, (byte) ' ', firstSpace + 1, lineEnd);
    if (firstSpace <= at || secondSpace < 0) {
      throw new Malformed("the request line is not \"method target version\"");
    }
    for (int i = at; i < firstSpace; i++) {
      if (!isTokenChar(bytes[i])) {
        throw new Malformed("the method holds a character a method cannot have");
      }
    }
    if (secondSpace == firstSpace + 1 || bytes[firstSpace + 1] != '/') {
      throw new Malformed("the request target is not a path (origin form)");
    }
    for (int i = firstSpace + 1; i < secondSpace; i++) {
      if (bytes[i] <= ' ' || bytes[i] >= 0x7f) {
        throw new Malformed("the request target holds a space, control or non-ASCII character");
      }
    }
    String version = ascii(bytes, secondSpace + 1, lineEnd);
    boolean http11 = version.equals("HTTP/1.1");
    if (!http11 && !version.equals("HTTP/1.0")) {
      throw new Malformed("the HTTP version is not HTTP/1.1 or HTTP/1.0");
    }
    DataPortRequest request =
        new DataPortRequest(
            ascii(bytes, at, firstSpace), ascii(bytes, firstSpace + 1, secondSpace), http11);
    int fields = 0;
    for (at = lineEnd + 2; ; at = lineEnd + 2) {
      lineEnd = lineEnd(bytes, at, end);
      if (lineEnd == at) {
        break;
      }
      if (++fields > MAX_FIELDS) {
        throw new Malformed("the head has more than " + MAX_FIELDS + " header fields");
      }
      request.field(bytes, at, lineEnd);
    }
    if (http11 && request.host == null) {
      throw new Malformed("an HTTP/1.1 request needs a Host header");
    }
    return request;
  }

  private void field(byte[] bytes, int start, int end) throws Malformed {
    int colon = indexOf(bytes, (byte) ':', start, end);
    if (colon <= start) {
      throw new Malformed(
          bytes[start] == ' ' || bytes[start] == '\t'
              ? "obsolete line folding is not accepted"
              : "a header line has no field name");
    }
    for (int i = start; i < colon; i++) {
      if (!isTokenChar(bytes[i])) {
        throw new Malformed("a field name holds a character a name cannot have");
      }
    }
    int from = colon + 1;
    int to = end;
    while (from < to && (bytes[from] == ' ' || bytes[from] == '\t')) {
      from++;
    }
    while (to > from && (bytes[to - 1] == ' ' || bytes[to - 1] == '\t')) {
      to--;
    }
    for (int i = from; i < to; i++) {
      int b = bytes[i] & 0xff;
      if ((b < ' ' && b != '\t') || b == 0x7f) {
        throw new Malformed("a field value holds a control character");
      }
    }
    String name = ascii(bytes, start, colon);
    switch (name.toLowerCase(java.util.Locale.ROOT)) {
      case "host" -> host = once(host, name, bytes, from, to);
      case "range" -> range = once(range, name, bytes, from, to);
      case "authorization" -> authorization = once(authorization, name, bytes, from, to);
      case "content-length" -> {
        contentLength = once(contentLength, name, bytes, from, to);
        if (contentLength.isEmpty() || !contentLength.chars().allMatch(c -> c >= '0' && c <= '9')) {
          throw new Malformed("Content-Length is not a number");
        }
        // Leading zeros change nothing, as in any number; more than 18 digits after them are past
        // any disk, and past what a long holds.
        int zeros = 0;
        while (zeros < contentLength.length() - 1 && contentLength.charAt(zeros) == '0') {
          zeros++;
        }
        if (contentLength.length() - zeros > 18) {
          throw new Malformed("Content-Length is too large");
        }
        contentLengthBytes = Long.parseLong(contentLength, zeros, contentLength.length(), 10);
      }
      case "transfer-encoding" -> transferEncoding = true;
      case "content-range" -> contentRange = once(contentRange, name, bytes, from, to);
      case "content-type" -> contentType = once(contentType, name, bytes, from, to);
      case "if-match" -> ifMatch = joined(ifMatch, bytes, from, to);
      case "content-digest" -> contentDigest = joined(contentDigest, bytes, from, to);
      case "expect" -> expectContinue |= ascii(bytes, from, to).equalsIgnoreCase("100-continue");
      case "want-content-digest" -> wantContentDigest = joined(wantContentDigest, bytes, from, to);
      case "connection" -> {
        for (String option : ascii(bytes, from, to).split(",")) {
          String o = option.trim();
          connectionClose |= o.equalsIgnoreCase("close");
          connectionKeepAlive |= o.equalsIgnoreCase("keep-alive");
        }
      }
      default -> {
        // Not acted on.
      }
    }
  }

  /** A list field given on several lines, joined with commas as one (RFC 9110, section 5.3). */
  private static String joined(@Nullable String earlier, byte[] bytes, int from, int to) {
    String value = text(bytes, from, to);
    return earlier == null ? value : earlier + ", " + value;
  }

  private static String once(@Nullable String earlier, String name, byte[] bytes, int from, int to)
      throws Malformed {
    if (earlier != null) {
      throw new Malformed("the head has " + name + " twice");
    }
    return text(bytes, from, to);
  }

  /** The end of the line starting at {@code from}: the index of its CR, which an LF follows. */
  private static int lineEnd(byte[] bytes, int from, int end) throws Malformed {
    for (int i = from; i < end; i++) {
      if (bytes[i] == '\n') {
        throw new Malformed("a line ends in a bare LF; lines end in CRLF");
      }
      if (bytes[i] == '\r') {
        if (i + 1 >= end || bytes[i + 1] != '\n') {
          throw new Malformed("a CR is not followed by LF");
        }
        return i;
      }
    }
    throw new Malformed("the head ends inside a line");
  }

  private static int indexOf(byte[] bytes, byte wanted, int from, int to) {
    for (int i = from; i < to; i++) {
      if (bytes[i] == wanted) {
        return i;
      }
    }
    return -1;
  }

  /** RFC 9110's tchar: what method and field names are made of. */
  private static boolean isTokenChar(byte b) {
    return (b >= 'a' && b <= 'z')
        || (b >= 'A' && b <= 'Z')
        || (b >= '0' && b <= '9')
        || "!#$%&'*+-.^_`|~".indexOf(b) >= 0;
  }

  private static String ascii(byte[] bytes, int from, int to) {
    return new String(bytes, from, to - from, StandardCharsets.US_ASCII);
  }

  /** A field value: bytes above 0x7f are taken as Latin-1, as the servlet container takes them. */
  private static String text(byte[] bytes, int from, int to) {
    return new String(bytes, from, to - from, StandardCharsets.ISO_8859_1);
  }
}
