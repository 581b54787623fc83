package dev.fvdisk.objectstore;

import java.nio.ByteBuffer;
import java.util.HexFormat;
import java.util.zip.CRC32C;

/** The CRC-32C an object is stored with, as eight hex digits. */
final class Crc32c {

  private Crc32c() {}

  static String of(ByteBuffer data) {
    CRC32C crc = new CRC32C();
    crc.update(data.duplicate());
    return HexFormat.of().toHexDigits((int) crc.getValue());
  }
}
