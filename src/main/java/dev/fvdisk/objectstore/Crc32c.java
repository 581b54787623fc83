package dev.fvdisk.objectstore;

import java.nio.ByteBuffer;
import java.util.HexFormat;
import java.util.zip.CRC32C;

/** The CRC-32C of objects and pages: as eight hex digits in an object's metadata, or a number. */
final class Crc32c {

  private Crc32c() {}

  static String of(ByteBuffer data) {
    return HexFormat.of().toHexDigits(value(data));
  }

  /** The CRC-32C of the buffer's remaining bytes, which it leaves where they are. */
  static int value(ByteBuffer data) {
    CRC32C crc = new CRC32C();
    crc.update(data.duplicate());
    return (int) crc.getValue();
  }
}
