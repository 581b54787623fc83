package dev.fvdisk.reliability;

import java.nio.ByteBuffer;
import java.util.zip.CRC32C;

/**
 * Self-describing 512-byte sectors for the HTTP reliability harness. Every sector a client writes
 * names the image it was meant for, the virtual sector it was meant for, the write it belongs to,
 * and ends with a checksum; the bytes between are a filler that is a pure function of those
 * numbers. A sector read back is therefore either all zeros, a whole stamp of exactly one write (or
 * of the base image) at exactly this place, or foreign: torn, shifted, misplaced, from another
 * image, or garbage.
 *
 * <pre>
 * offset size field (big-endian)
 *      0    8 magic "FVHTTPST"
 *      8    8 image tag (each test image has its own)
 *     16    8 virtual sector index
 *     24    8 write id: &gt; 0 for a client's write, {@link #BASE} for a base image's content
 *     32  472 filler: a SplitMix64 stream seeded from image tag, write id and sector
 *    504    8 CRC32C of bytes 0..503
 * </pre>
 */
final class Stamp {

  static final int SECTOR = 512;

  /** An all-zero sector. */
  static final long ZERO = 0;

  /** Anything that is neither zeros nor a valid stamp for the place it was read from. */
  static final long FOREIGN = -1;

  /** The write id of a base image's content. */
  static final long BASE = -2;

  private static final long MAGIC = 0x4656_4854_5450_5354L; // "FVHTTPST"
  private static final int HEADER = 32;
  private static final int CHECKSUM_AT = SECTOR - Long.BYTES;

  private Stamp() {}

  /** Fills {@code bytes} (whole sectors) with the stamps of one write starting at a sector. */
  static void fill(byte[] bytes, long imageTag, long writeId, long firstSector) {
    ByteBuffer dst = ByteBuffer.wrap(bytes);
    CRC32C crc = new CRC32C();
    for (int at = 0; at < bytes.length; at += SECTOR) {
      long sector = firstSector + at / SECTOR;
      dst.position(at);
      dst.putLong(MAGIC).putLong(imageTag).putLong(sector).putLong(writeId);
      long state = seed(imageTag, writeId, sector);
      for (int j = HEADER; j < CHECKSUM_AT; j += Long.BYTES) {
        state += 0x9E37_79B9_7F4A_7C15L;
        dst.putLong(mix(state));
      }
      crc.reset();
      crc.update(bytes, at, CHECKSUM_AT);
      dst.putLong(crc.getValue());
    }
  }

  /**
   * Identifies the sector at {@code at} of {@code bytes}, read back from virtual sector {@code
   * sector} of the image tagged {@code imageTag}, whose base (if any) is tagged {@code baseTag}.
   *
   * @return the write id, {@link #BASE}, {@link #ZERO}, or {@link #FOREIGN}
   */
  static long identify(byte[] bytes, int at, long sector, long imageTag, long baseTag) {
    ByteBuffer src = ByteBuffer.wrap(bytes);
    boolean zero = true;
    for (int j = 0; j < SECTOR && zero; j += Long.BYTES) {
      zero = src.getLong(at + j) == 0;
    }
    if (zero) {
      return ZERO;
    }
    long tag = src.getLong(at + 8);
    long writeId = src.getLong(at + 24);
    boolean own = tag == imageTag && writeId > 0;
    boolean base = baseTag != 0 && tag == baseTag && writeId == BASE;
    if (src.getLong(at) != MAGIC || src.getLong(at + 16) != sector || !(own || base)) {
      return FOREIGN;
    }
    CRC32C crc = new CRC32C();
    crc.update(bytes, at, CHECKSUM_AT);
    if (src.getLong(at + CHECKSUM_AT) != crc.getValue()) {
      return FOREIGN;
    }
    long state = seed(tag, writeId, sector);
    for (int j = HEADER; j < CHECKSUM_AT; j += Long.BYTES) {
      state += 0x9E37_79B9_7F4A_7C15L;
      if (src.getLong(at + j) != mix(state)) {
        return FOREIGN;
      }
    }
    return writeId;
  }

  private static long seed(long imageTag, long writeId, long sector) {
    return mix(mix(imageTag) ^ writeId * 0xBF58_476D_1CE4_E5B9L ^ sector);
  }

  private static long mix(long z) {
    z = (z ^ (z >>> 30)) * 0xBF58_476D_1CE4_E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D0_49BB_1331_11EBL;
    return z ^ (z >>> 31);
  }
}
