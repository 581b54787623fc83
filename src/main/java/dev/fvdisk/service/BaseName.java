package dev.fvdisk.service;

import org.jspecify.annotations.Nullable;

/**
 * How a clone names its base: an image ({@code golden}), or a snapshot of one ({@code golden@s1}).
 * Image and snapshot names never hold {@code @}, so the form is unambiguous.
 *
 * @param snapshot the snapshot's name, or null when the base is the image itself
 */
public record BaseName(String image, @Nullable String snapshot) {

  /** Splits a name at its first {@code @}; the parts are not checked here. */
  public static BaseName parse(String name) {
    int at = name.indexOf('@');
    return at < 0
        ? new BaseName(name, null)
        : new BaseName(name.substring(0, at), name.substring(at + 1));
  }

  /** The name as a clone records it, and as descriptors show it. */
  @Override
  public String toString() {
    return snapshot == null ? image : image + "@" + snapshot;
  }
}
