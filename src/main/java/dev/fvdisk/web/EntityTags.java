package dev.fvdisk.web;

import dev.fvdisk.service.ExpectedVersion;
import dev.fvdisk.service.InvalidRequestException;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.jspecify.annotations.Nullable;

/**
 * Formats entity tags and parses {@code If-Match} (RFC 9110 §13.1.1). An entity tag is an image's
 * version ({@link dev.fvdisk.service.VirtualDisk#version()}), quoted.
 */
final class EntityTags {

  private static final Pattern ENTITY_TAG =
      Pattern.compile("\\s*(W/)?\"([\\x21\\x23-\\x7e]*)\"\\s*");

  private EntityTags() {}

  static String quote(String version) {
    return "\"" + version + "\"";
  }

  /**
   * The version an {@code If-Match} header expects, an entity tag being an image's version; null
   * when absent. Weak tags are kept out, as {@code If-Match} compares strongly.
   */
  static @Nullable ExpectedVersion parseIfMatch(@Nullable String header) {
    if (header == null) {
      return null;
    }
    if (header.trim().equals("*")) {
      return ExpectedVersion.any();
    }
    List<String> tags = new ArrayList<>();
    for (String part : header.split(",", -1)) {
      Matcher m = ENTITY_TAG.matcher(part);
      if (!m.matches()) {
        throw new InvalidRequestException(
            "If-Match \"" + header + "\" is malformed; expected * or quoted entity tags");
      }
      if (m.group(1) == null) {
        tags.add(m.group(2));
      }
    }
    return ExpectedVersion.oneOf(tags);
  }
}
