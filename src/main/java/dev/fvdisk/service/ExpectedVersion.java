package dev.fvdisk.service;

import java.util.List;

/**
 * The version a conditional change expects the image to be at: any version at all (the image only
 * has to exist), or one of a list. The change is refused with a {@link VersionMismatchException}
 * otherwise. Versions never repeat, so a version that does not match now never will.
 *
 * @param anyVersion whether every version matches
 * @param versions the versions that match when not {@code anyVersion}
 */
public record ExpectedVersion(boolean anyVersion, List<String> versions) {

  public ExpectedVersion {
    versions = List.copyOf(versions);
  }

  /** Matches every version of an image that exists. */
  public static ExpectedVersion any() {
    return new ExpectedVersion(true, List.of());
  }

  /** Matches exactly these versions; none when the list is empty. */
  public static ExpectedVersion oneOf(List<String> versions) {
    return new ExpectedVersion(false, versions);
  }

  public boolean matches(String version) {
    return anyVersion || versions.contains(version);
  }
}
