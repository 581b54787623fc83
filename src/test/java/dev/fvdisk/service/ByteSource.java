package dev.fvdisk.service;

import java.nio.ByteBuffer;

/** A write's body from an array in memory, for service tests. */
final class ByteSource {

  private ByteSource() {}

  static DataSource of(byte[] data) {
    ByteBuffer source = ByteBuffer.wrap(data);
    return into -> {
      if (!source.hasRemaining()) {
        return -1;
      }
      int n = Math.min(into.remaining(), source.remaining());
      into.put(source.slice(source.position(), n));
      source.position(source.position() + n);
      return n;
    };
  }
}
