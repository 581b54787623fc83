package dev.fvdisk.objectstore;

import java.io.IOException;

/** An object whose bytes do not match the CRC-32C it was stored with, or that has none. */
public class CorruptObjectException extends IOException {

  public CorruptObjectException(String message) {
    super(message);
  }
}
