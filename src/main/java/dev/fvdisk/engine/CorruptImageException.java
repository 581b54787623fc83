package dev.fvdisk.engine;

import java.io.IOException;

/**
 * The image's bytes do not form a valid fvdisk image: wrong magic, unsupported version, a checksum
 * that does not match, or values that break the format's rules. The message names the file, the
 * byte offset and what was expected.
 */
public class CorruptImageException extends IOException {

  private static final long serialVersionUID = 1L;

  /** What kind of problem, so callers can tell a foreign file from a damaged one. */
  public enum Kind {
    /** The file does not start with the fvdisk magic: it is not ours. */
    NOT_AN_IMAGE,
    /** An fvdisk image of a format version this code cannot read. */
    UNSUPPORTED_VERSION,
    /** An fvdisk image whose checksums or values are wrong. */
    CORRUPT
  }

  private final Kind kind;

  public CorruptImageException(Kind kind, String message) {
    super(message);
    this.kind = kind;
  }

  public Kind kind() {
    return kind;
  }
}
