package dev.fvdisk.web;

import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads an RFC 9651 structured-field dictionary, the syntax of {@code Content-Digest} and {@code
 * Want-Content-Digest}: {@code key=value} members separated by commas, each value an item with
 * optional parameters, or an inner list of them. The parsing follows the RFC's algorithm, so a
 * field it rejects is one every conforming parser rejects.
 *
 * <p>Member values come back as Java types: {@link Long} (integer), {@link BigDecimal} (decimal),
 * {@link String} (string or display string), {@link Token}, {@code byte[]} (byte sequence), {@link
 * Boolean}, {@link Instant} (date), and {@code List<Object>} for an inner list. Parameters are read
 * and dropped, as neither digest field gives them a meaning. A key named twice keeps its last
 * value, as the RFC says. Stateless; safe to share.
 */
final class StructuredDictionary {

  /** A token item, kept apart from a string so that {@code a} and {@code "a"} stay distinct. */
  record Token(String text) {}

  private final String input;
  private int at;

  private StructuredDictionary(String input) {
    this.input = input;
  }

  /**
   * The members of {@code field}, in order; an empty field is an empty dictionary.
   *
   * @throws IllegalArgumentException when the field is not a dictionary; the message says where
   */
  static Map<String, Object> parse(String field) {
    StructuredDictionary parser = new StructuredDictionary(field);
    parser.skipSpaces();
    Map<String, Object> members = parser.members();
    parser.skipSpaces();
    if (!parser.atEnd()) {
      throw parser.malformed("unexpected text after the last member");
    }
    return members;
  }

  private Map<String, Object> members() {
    Map<String, Object> members = new LinkedHashMap<>();
    while (!atEnd()) {
      String key = key();
      Object value;
      if (peek() == '=') {
        at++;
        value = peek() == '(' ? innerList() : item();
      } else {
        value = Boolean.TRUE;
        parameters();
      }
      // A key named again keeps its place and takes the new value.
      members.put(key, value);
      skipWhitespace();
      if (atEnd()) {
        break;
      }
      if (input.charAt(at++) != ',') {
        throw malformed("expected a comma between members");
      }
      skipWhitespace();
      if (atEnd()) {
        throw malformed("a comma ends the field");
      }
    }
    return members;
  }

  private List<Object> innerList() {
    at++;
    List<Object> items = new ArrayList<>();
    while (!atEnd()) {
      skipSpaces();
      if (peek() == ')') {
        at++;
        parameters();
        return items;
      }
      items.add(item());
      if (peek() != ' ' && peek() != ')') {
        throw malformed("expected a space or ')' in an inner list");
      }
    }
    throw malformed("an inner list is not closed");
  }

  private Object item() {
    Object value = bareItem();
    parameters();
    return value;
  }

  private void parameters() {
    while (peek() == ';') {
      at++;
      skipSpaces();
      key();
      if (peek() == '=') {
        at++;
        bareItem();
      }
    }
  }

  private String key() {
    int start = at;
    char first = peek();
    if (!isLowerAlpha(first) && first != '*') {
      throw malformed("expected a key (a lower-case letter or '*' first)");
    }
    at++;
    while (!atEnd()) {
      char c = peek();
      if (!isLowerAlpha(c) && !isDigit(c) && "_-.*".indexOf(c) < 0) {
        break;
      }
      at++;
    }
    return input.substring(start, at);
  }

  private Object bareItem() {
    char c = peek();
    if (c == '-' || isDigit(c)) {
      return number();
    }
    return switch (c) {
      case '"' -> string();
      case ':' -> byteSequence();
      case '?' -> bool();
      case '@' -> date();
      case '%' -> displayString();
      default -> {
        if (isAlpha(c) || c == '*') {
          yield token();
        }
        throw malformed("expected an item");
      }
    };
  }

  private Object number() {
    int start = at;
    boolean negative = peek() == '-';
    if (negative) {
      at++;
    }
    if (!isDigit(peek())) {
      throw malformed("expected a digit");
    }
    int digitsStart = at;
    int point = -1;
    while (!atEnd()) {
      char c = peek();
      if (isDigit(c)) {
        at++;
      } else if (c == '.' && point < 0) {
        if (at - digitsStart > 12) {
          throw malformed("a decimal has more than 12 integer digits");
        }
        point = at++;
      } else {
        break;
      }
      if (at - digitsStart > (point < 0 ? 15 : 16)) {
        throw malformed("a number has too many digits");
      }
    }
    String text = input.substring(start, at);
    if (point < 0) {
      return Long.parseLong(text);
    }
    int fractionDigits = at - point - 1;
    if (fractionDigits < 1 || fractionDigits > 3) {
      throw malformed("a decimal needs one to three fraction digits");
    }
    return new BigDecimal(text);
  }

  private String string() {
    at++;
    StringBuilder text = new StringBuilder();
    while (!atEnd()) {
      char c = input.charAt(at++);
      if (c == '"') {
        return text.toString();
      }
      if (c == '\\') {
        char escaped = atEnd() ? 0 : input.charAt(at++);
        if (escaped != '"' && escaped != '\\') {
          throw malformed("a string escapes something other than '\"' or '\\'");
        }
        text.append(escaped);
      } else if (c < 0x20 || c > 0x7e) {
        throw malformed("a string holds a character outside printable ASCII");
      } else {
        text.append(c);
      }
    }
    throw malformed("a string is not closed");
  }

  private Token token() {
    int start = at;
    at++;
    while (!atEnd() && (isTokenChar(peek()) || peek() == ':' || peek() == '/')) {
      at++;
    }
    return new Token(input.substring(start, at));
  }

  private byte[] byteSequence() {
    int start = ++at;
    int end = input.indexOf(':', start);
    if (end < 0) {
      throw malformed("a byte sequence is not closed with ':'");
    }
    String base64 = input.substring(start, end);
    for (int i = 0; i < base64.length(); i++) {
      char c = base64.charAt(i);
      if (!isAlpha(c) && !isDigit(c) && "+/=".indexOf(c) < 0) {
        at = start + i;
        throw malformed("a byte sequence holds a character outside base64");
      }
    }
    at = end + 1;
    try {
      // The RFC asks parsers to take missing padding; Java's basic decoder does.
      return Base64.getDecoder().decode(base64);
    } catch (IllegalArgumentException e) {
      throw malformed("a byte sequence is not valid base64");
    }
  }

  private Boolean bool() {
    at++;
    char c = peek();
    if (c != '0' && c != '1') {
      throw malformed("a boolean is ?0 or ?1");
    }
    at++;
    return c == '1';
  }

  private Instant date() {
    at++;
    if (!(number() instanceof Long seconds)) {
      throw malformed("a date is a whole number of seconds");
    }
    return Instant.ofEpochSecond(seconds);
  }

  private String displayString() {
    at++;
    if (peek() != '"') {
      throw malformed("a display string starts with %\"");
    }
    at++;
    ByteBuffer utf8 = ByteBuffer.allocate(input.length());
    while (!atEnd()) {
      char c = input.charAt(at++);
      if (c == '"') {
        try {
          return StandardCharsets.UTF_8
              .newDecoder()
              .onMalformedInput(CodingErrorAction.REPORT)
              .decode(utf8.flip())
              .toString();
        } catch (CharacterCodingException e) {
          throw malformed("a display string is not UTF-8");
        }
      }
      if (c < 0x20 || c > 0x7e) {
        throw malformed("a display string holds a character outside printable ASCII");
      }
      if (c == '%') {
        if (at + 2 > input.length() || !isLowerHex(peek()) || !isLowerHex(input.charAt(at + 1))) {
          throw malformed("a display string has '%' without two lower-case hex digits");
        }
        utf8.put((byte) Integer.parseInt(input, at, at + 2, 16));
        at += 2;
      } else {
        utf8.put((byte) c);
      }
    }
    throw malformed("a display string is not closed");
  }

  private void skipSpaces() {
    while (peek() == ' ') {
      at++;
    }
  }

  private void skipWhitespace() {
    while (peek() == ' ' || peek() == '\t') {
      at++;
    }
  }

  private boolean atEnd() {
    return at >= input.length();
  }

  /** The next character, or 0 at the end (which no rule accepts). */
  private char peek() {
    return atEnd() ? 0 : input.charAt(at);
  }

  private IllegalArgumentException malformed(String what) {
    return new IllegalArgumentException(what + " (at character " + (at + 1) + ")");
  }

  private static boolean isLowerAlpha(char c) {
    return c >= 'a' && c <= 'z';
  }

  private static boolean isAlpha(char c) {
    return isLowerAlpha(c) || (c >= 'A' && c <= 'Z');
  }

  private static boolean isDigit(char c) {
    return c >= '0' && c <= '9';
  }

  private static boolean isLowerHex(char c) {
    return isDigit(c) || (c >= 'a' && c <= 'f');
  }

  private static boolean isTokenChar(char c) {
    return isAlpha(c) || isDigit(c) || "!#$%&'*+-.^_`|~".indexOf(c) >= 0;
  }
}
