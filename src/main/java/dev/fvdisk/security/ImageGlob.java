package dev.fvdisk.security;

import java.util.List;

/**
 * The image names a token may touch: one or more glob patterns where {@code *} stands for any run
 * of characters and {@code ?} for one. Everything else matches itself, so a pattern can never reach
 * past an image name (names cannot hold {@code /}).
 *
 * <p>Matched by hand rather than through a compiled regular expression: every authorized request
 * asks, and a pattern of {@code *} (the unauthenticated loopback client's) then costs nothing.
 */
record ImageGlob(List<String> patterns, boolean any) {

  static final ImageGlob ANY = of(List.of("*"));

  static ImageGlob of(List<String> patterns) {
    List<String> trimmed = patterns.stream().map(String::trim).filter(p -> !p.isEmpty()).toList();
    if (trimmed.isEmpty()) {
      throw new IllegalArgumentException("images needs at least one pattern, such as * or vm-*");
    }
    return new ImageGlob(
        trimmed, trimmed.stream().anyMatch(p -> p.chars().allMatch(c -> c == '*')));
  }

  boolean matches(String imageName) {
    if (any) {
      return true;
    }
    for (String pattern : patterns) {
      if (matches(pattern, imageName)) {
        return true;
      }
    }
    return false;
  }

  /**
   * Whether {@code glob} matches all of {@code name}. Greedy with one point to return to: on a
   * mismatch after a {@code *}, that star takes one more character and matching resumes. Only the
   * last star needs remembering, because whatever an earlier star took, a later one can take
   * instead; so the work stays within pattern length times name length, with no recursion.
   */
  static boolean matches(String glob, String name) {
    int g = 0;
    int n = 0;
    int star = -1;
    int starTook = 0;
    while (n < name.length()) {
      if (g < glob.length() && glob.charAt(g) == '*') {
        star = g++;
        starTook = n;
      } else if (g < glob.length() && (glob.charAt(g) == '?' || glob.charAt(g) == name.charAt(n))) {
        g++;
        n++;
      } else if (star >= 0) {
        g = star + 1;
        n = ++starTook;
      } else {
        return false;
      }
    }
    while (g < glob.length() && glob.charAt(g) == '*') {
      g++;
    }
    return g == glob.length();
  }

  @Override
  public String toString() {
    return String.join(",", patterns);
  }
}
