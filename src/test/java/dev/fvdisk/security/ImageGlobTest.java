package dev.fvdisk.security;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.regex.Pattern;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

/**
 * The hand-written glob matcher against the regular expression it replaced: a small alphabet makes
 * stars, question marks and repeats meet often, so the backtracking cases come up in every run.
 */
class ImageGlobTest {

  @Property(tries = 3000)
  void matches_as_the_equivalent_regular_expression(
      @ForAll("globs") String glob, @ForAll("names") String name) {
    assertThat(ImageGlob.matches(glob, name)).isEqualTo(regexOf(glob).matcher(name).matches());
  }

  @Property(tries = 500)
  void a_list_matches_when_any_of_its_patterns_does(
      @ForAll("globs") String first, @ForAll("globs") String second, @ForAll("names") String name) {
    assertThat(ImageGlob.of(List.of(first, second)).matches(name))
        .isEqualTo(
            regexOf(first).matcher(name).matches() || regexOf(second).matcher(name).matches());
  }

  @Provide
  Arbitrary<String> globs() {
    return Arbitraries.strings().withChars("ab.*?").ofMinLength(1).ofMaxLength(8);
  }

  @Provide
  Arbitrary<String> names() {
    return Arbitraries.strings().withChars("ab.").ofMinLength(0).ofMaxLength(10);
  }

  private static Pattern regexOf(String glob) {
    StringBuilder regex = new StringBuilder();
    for (char c : glob.toCharArray()) {
      switch (c) {
        case '*' -> regex.append(".*");
        case '?' -> regex.append('.');
        default -> regex.append(Pattern.quote(String.valueOf(c)));
      }
    }
    return Pattern.compile(regex.toString());
  }
}
