package dev.fvdisk.security;

import java.util.List;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * The image names a token may touch: one or more glob patterns where {@code *} stands for any run
 * of characters and {@code ?} for one. Everything else matches itself, so a pattern can never reach
 * past an image name (names cannot hold {@code /}).
 */
record ImageGlob(List<String> patterns, Pattern regex) {

  static final ImageGlob ANY = of(List.of("*"));

  static ImageGlob of(List<String> patterns) {
    List<String> trimmed = patterns.stream().map(String::trim).filter(p -> !p.isEmpty()).toList();
    if (trimmed.isEmpty()) {
      throw new IllegalArgumentException("images needs at least one pattern, such as * or vm-*");
    }
    String regex =
        trimmed.stream().map(ImageGlob::toRegex).collect(Collectors.joining("|", "(?:", ")"));
    return new ImageGlob(trimmed, Pattern.compile(regex));
  }

  boolean matches(String imageName) {
    return regex.matcher(imageName).matches();
  }

  private static String toRegex(String glob) {
    StringBuilder regex = new StringBuilder();
    for (char c : glob.toCharArray()) {
      switch (c) {
        case '*' -> regex.append(".*");
        case '?' -> regex.append('.');
        default -> regex.append(Pattern.quote(String.valueOf(c)));
      }
    }
    return regex.toString();
  }

  @Override
  public String toString() {
    return String.join(",", patterns);
  }
}
