package dev.fvdisk.service;

import java.util.List;
import org.jspecify.annotations.Nullable;

/**
 * An {@code If-Match} precondition: any current entity tag ({@code *}), or one of a list of strong
 * tags (unquoted). Weak tags never match, as strong comparison requires.
 */
public record IfMatch(boolean any, List<String> etags) {

  /** No precondition. */
  public static final @Nullable IfMatch NONE = null;

  public IfMatch {
    etags = List.copyOf(etags);
  }

  public boolean matches(String currentEtag) {
    return any || etags.contains(currentEtag);
  }
}
