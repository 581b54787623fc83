package dev.fvdisk.web;

import dev.fvdisk.service.InvalidRequestException;
import dev.fvdisk.service.RangeOutsideDiskException;
import java.util.Locale;
import org.jspecify.annotations.Nullable;

/**
 * Parses {@code Range} (RFC 9110 §14.2) and the {@code Content-Range} of a write into a span of the
 * virtual disk. Only single byte ranges are served; several ranges get 416, never the disk.
 *
 * <p>By hand rather than with regular expressions: nearly every data request has one of these
 * headers. {@code ByteRangesTest} holds the parser to the expressions it replaced, {@code
 * (\d*)-(\d*)} and {@code bytes (\d+)-(\d+)/(\d+|\*)} (the prefix in any case).
 */
final class ByteRanges {

  /** A span of the virtual disk. */
  record Span(long offsetBytes, long lengthBytes) {
    long lastByte() {
      return offsetBytes + lengthBytes - 1;
    }
  }

  private static final String CONTENT_RANGE_UNIT = "bytes ";

  private ByteRanges() {}

  /**
   * The span a {@code Range} header asks for, clipped to the disk; null when there is no header.
   *
   * @throws InvalidRequestException when the header is malformed
   * @throws RangeNotSatisfiableException for several ranges, an inverted range, or one that starts
   *     past the end
   */
  static @Nullable Span parseRange(@Nullable String header, long sizeBytes) {
    if (header == null) {
      return null;
    }
    String value = header.trim();
    int equals = value.indexOf('=');
    if (equals < 0 || !value.substring(0, equals).trim().toLowerCase(Locale.ROOT).equals("bytes")) {
      throw new InvalidRequestException(
          "Range header \"" + header + "\" is malformed; expected bytes=start-end");
    }
    String set = value.substring(equals + 1).trim();
    if (set.contains(",")) {
      throw new RangeNotSatisfiableException(
          "several ranges in one request are not served; ask for one range at a time", sizeBytes);
    }
    int dash = set.indexOf('-');
    String from = dash < 0 ? "" : set.substring(0, dash);
    String to = dash < 0 ? "" : set.substring(dash + 1);
    if (!isDigits(from) || !isDigits(to) || (from.isEmpty() && to.isEmpty())) {
      throw new InvalidRequestException(
          "Range header \"" + header + "\" is malformed; expected bytes=start-end");
    }
    if (from.isEmpty()) {
      long suffix = parse(to);
      if (suffix == 0) {
        throw new RangeNotSatisfiableException("a suffix range of 0 bytes is empty", sizeBytes);
      }
      long length = Math.min(suffix, sizeBytes);
      return new Span(sizeBytes - length, length);
    }
    long first = parse(from);
    if (first >= sizeBytes) {
      throw new RangeNotSatisfiableException(
          "the range starts at byte " + first + ", past the end of the " + sizeBytes + "-byte disk",
          sizeBytes);
    }
    long last = to.isEmpty() ? sizeBytes - 1 : parse(to);
    if (last < first) {
      throw new RangeNotSatisfiableException(
          "the range " + first + "-" + last + " ends before it starts", sizeBytes);
    }
    last = Math.min(last, sizeBytes - 1);
    return new Span(first, last - first + 1);
  }

  /**
   * The span a write covers: from {@code Content-Range} when given (checked against {@code
   * Content-Length} and the disk), else {@code Content-Length} bytes at offset 0.
   *
   * @param contentLength the request's Content-Length, or -1 when it has none
   * @throws LengthRequiredException when neither header gives the length
   * @throws InvalidRequestException when Content-Range is malformed or disagrees with
   *     Content-Length
   * @throws RangeOutsideDiskException when the range ends past the disk
   * @throws RangeNotSatisfiableException when it names another disk size
   */
  static Span parseWrite(@Nullable String contentRange, long contentLength, long sizeBytes) {
    if (contentRange == null) {
      if (contentLength < 0) {
        throw new LengthRequiredException(
            "a write needs Content-Range or Content-Length to know its length in advance");
      }
      return new Span(0, contentLength);
    }
    String[] parts = contentRangeParts(contentRange.trim());
    if (parts == null) {
      throw new InvalidRequestException(
          "Content-Range \""
              + contentRange
              + "\" is malformed; expected bytes start-end/* or /size");
    }
    long first = parse(parts[0]);
    long last = parse(parts[1]);
    String completeLength = parts[2];
    if (last < first) {
      throw new InvalidRequestException(
          "Content-Range \"" + contentRange + "\" ends before it starts");
    }
    if (last == Long.MAX_VALUE) {
      // Saturated or not, such an end lies past any disk, and its length could not be counted.
      throw new RangeNotSatisfiableException(
          "Content-Range \"" + contentRange + "\" ends past the disk of " + sizeBytes + " bytes",
          sizeBytes);
    }
    long length = last - first + 1;
    if (contentLength >= 0 && contentLength != length) {
      throw new InvalidRequestException(
          "Content-Length "
              + contentLength
              + " disagrees with the "
              + length
              + " bytes of Content-Range \""
              + contentRange
              + "\"");
    }
    if (!completeLength.equals("*") && parse(completeLength) != sizeBytes) {
      throw new RangeNotSatisfiableException(
          "Content-Range names a complete length of "
              + completeLength
              + " bytes, but the disk has "
              + sizeBytes,
          sizeBytes);
    }
    if (last >= sizeBytes) {
      throw new RangeOutsideDiskException(first, length, sizeBytes);
    }
    return new Span(first, length);
  }

  /**
   * First byte, last byte and complete length ({@code *} or digits) of {@code bytes
   * first-last/length}, the unit in any case; null when the value has any other form.
   */
  private static String @Nullable [] contentRangeParts(String value) {
    if (value.length() < CONTENT_RANGE_UNIT.length()) {
      return null;
    }
    for (int i = 0; i < CONTENT_RANGE_UNIT.length(); i++) {
      // ASCII case only, as the header's grammar (and the expression before) has it.
      char c = value.charAt(i);
      char lower = c >= 'A' && c <= 'Z' ? (char) (c + ('a' - 'A')) : c;
      if (lower != CONTENT_RANGE_UNIT.charAt(i)) {
        return null;
      }
    }
    int dash = value.indexOf('-', CONTENT_RANGE_UNIT.length());
    int slash = dash < 0 ? -1 : value.indexOf('/', dash + 1);
    if (slash < 0) {
      return null;
    }
    String first = value.substring(CONTENT_RANGE_UNIT.length(), dash);
    String last = value.substring(dash + 1, slash);
    String completeLength = value.substring(slash + 1);
    boolean lengthOk = completeLength.equals("*") || isDigits(completeLength);
    return !first.isEmpty()
            && isDigits(first)
            && !last.isEmpty()
            && isDigits(last)
            && !completeLength.isEmpty()
            && lengthOk
        ? new String[] {first, last, completeLength}
        : null;
  }

  /** Whether every character is an ASCII digit (the empty string included). */
  private static boolean isDigits(String s) {
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c < '0' || c > '9') {
        return false;
      }
    }
    return true;
  }

  /** Digits to a long; numbers too large for one saturate, which every check treats as too big. */
  private static long parse(String digits) {
    try {
      return Long.parseLong(digits);
    } catch (NumberFormatException e) {
      return Long.MAX_VALUE;
    }
  }
}
