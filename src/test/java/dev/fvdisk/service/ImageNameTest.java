package dev.fvdisk.service;

import static org.assertj.core.api.Assertions.assertThat;

import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import org.junit.jupiter.api.Test;

/** {@link ImageDirectory#isValidName} checks by hand what {@link ImageDirectory#NAME} says. */
class ImageNameTest {

  @Property(tries = 5000)
  void agrees_with_the_documented_pattern(@ForAll("candidates") String name) {
    assertThat(ImageDirectory.isValidName(name))
        .isEqualTo(ImageDirectory.NAME.matcher(name).matches());
  }

  @Test
  void edges_of_the_rule() {
    assertThat(ImageDirectory.isValidName("a".repeat(63))).isTrue();
    assertThat(ImageDirectory.isValidName("a".repeat(64))).isFalse();
    assertThat(ImageDirectory.isValidName("")).isFalse();
    assertThat(ImageDirectory.isValidName(".")).isFalse();
    assertThat(ImageDirectory.isValidName("..")).isFalse();
    assertThat(ImageDirectory.isValidName("-a")).isFalse();
    assertThat(ImageDirectory.isValidName("9.a_b-c")).isTrue();
    assertThat(ImageDirectory.isValidName("vm/1")).isFalse();
    assertThat(ImageDirectory.isValidName("Vm")).isFalse();
  }

  /** Mostly legal characters with a few that are not, at lengths around the 63-character limit. */
  @Provide
  Arbitrary<String> candidates() {
    Arbitrary<String> shortOnes = Arbitraries.strings().withChars("az09._-A/ é").ofMaxLength(6);
    Arbitrary<String> longOnes =
        Arbitraries.strings().withChars("ab9._-").ofMinLength(60).ofMaxLength(66);
    return Arbitraries.oneOf(shortOnes, longOnes);
  }
}
