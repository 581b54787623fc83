package dev.fvdisk.service;

import java.util.List;

/**
 * An {@code If-Match} precondition: any current entity tag ({@code *}), or one of a list of strong
 * tags (unquoted). Weak tags never match, as strong comparison requires.
 */
public record IfMatch(boolean any, List<String> etags) {

  public IfMatch {
    etags = List.copyOf(etags);
  }

  public boolean matches(String currentEtag) {
    return any || etags.contains(currentEtag);
  }
}
