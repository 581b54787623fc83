package dev.fvdisk.web;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.regex.Matcher;
import java.util.regex.Pattern;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

/**
 * The hand-written header parsers against the regular expressions they replaced. Where the old
 * parser turned a header down as malformed, so must the new one; where it took the header, the new
 * one must give the same span or the same refusal.
 */
class ByteRangesTest {

  private static final Pattern RANGE_SPEC = Pattern.compile("(\\d*)-(\\d*)");
  private static final Pattern CONTENT_RANGE =
      Pattern.compile("bytes (\\d+)-(\\d+)/(\\d+|\\*)", Pattern.CASE_INSENSITIVE);
  private static final long SIZE = 1000;

  @Property(tries = 4000)
  void range_is_malformed_exactly_when_the_expression_says(@ForAll("rangeSets") String set) {
    String header = "bytes=" + set;
    Matcher m = RANGE_SPEC.matcher(set.trim());
    boolean wellFormed =
        set.contains(",") || (m.matches() && !(m.group(1).isEmpty() && m.group(2).isEmpty()));
    String outcome = outcome(() -> ByteRanges.parseRange(header, SIZE));
    if (wellFormed) {
      assertThat(outcome).doesNotContain("is malformed");
    } else {
      assertThat(outcome).startsWith("InvalidRequestException").contains("is malformed");
    }
    if (m.matches() && !set.contains(",") && !m.group(1).isEmpty()) {
      long first = Long.parseLong(m.group(1));
      if (first < SIZE && !m.group(2).isEmpty() && m.group(2).length() < 10) {
        long last = Long.parseLong(m.group(2));
        if (last >= first) {
          long end = Math.min(last, SIZE - 1);
          assertThat(outcome).isEqualTo(new ByteRanges.Span(first, end - first + 1).toString());
        }
      }
    }
  }

  @Property(tries = 4000)
  void content_range_is_malformed_exactly_when_the_expression_says(
      @ForAll("contentRanges") String value) {
    boolean wellFormed = CONTENT_RANGE.matcher(value.trim()).matches();
    String outcome = outcome(() -> ByteRanges.parseWrite(value, -1, SIZE));
    if (wellFormed) {
      assertThat(outcome).doesNotContain("is malformed");
      Matcher m = CONTENT_RANGE.matcher(value.trim());
      m.matches();
      if (m.group(1).length() < 10 && m.group(2).length() < 10 && m.group(3).equals("*")) {
        long first = Long.parseLong(m.group(1));
        long last = Long.parseLong(m.group(2));
        if (first <= last && last < SIZE) {
          assertThat(outcome).isEqualTo(new ByteRanges.Span(first, last - first + 1).toString());
        }
      }
    } else {
      assertThat(outcome).startsWith("InvalidRequestException").contains("is malformed");
    }
  }

  @Provide
  Arbitrary<String> rangeSets() {
    return Arbitraries.strings().withChars("0123456789-, x").ofMaxLength(12);
  }

  /** Mostly near-misses of {@code bytes a-b/c}: the unit in mixed case, then the numbers' part. */
  @Provide
  Arbitrary<String> contentRanges() {
    Arbitrary<String> unit = Arbitraries.of("bytes ", "BYTES ", "Bytes ", "bytes", "byteſ ", "x ");
    Arbitrary<String> rest = Arbitraries.strings().withChars("0123456789-/* ").ofMaxLength(14);
    return net.jqwik.api.Combinators.combine(unit, rest).as((u, r) -> u + r);
  }

  private static String outcome(java.util.concurrent.Callable<Object> parse) {
    try {
      return String.valueOf(parse.call());
    } catch (Exception e) {
      return e.getClass().getSimpleName() + ": " + e.getMessage();
    }
  }
}
