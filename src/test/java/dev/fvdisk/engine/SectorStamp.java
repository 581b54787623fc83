package dev.fvdisk.engine;

import java.nio.ByteBuffer;

/**
 * Self-describing 512-byte sector content for crash tests: every sector a test writes names the
 * write it belongs to and the virtual sector it was meant for, and the rest of it is a filler that
 * is a pure function of those two numbers. A verifier can therefore tell, for any sector it reads
 * back, which write put it there, and that the whole sector came from that write: a torn, shifted,
 * misplaced or foreign sector does not regenerate to the same 512 bytes.
 *
 * <p>Layout (big-endian):
 *
 * <pre>
 * offset size field
 *      0    8 magic: "FVKILLST" for a write, "FVKILLBS" for a clone test's base image
 *      8    8 write id: never 0, -1 or -2 in a write stamp; -2 ({@link #BASE}) in a base stamp
 *     16    8 virtual sector index
 *     24  488 filler: a SplitMix64 stream seeded from write id and sector index
 * </pre>
 *
 * <p>A base stamp ({@link #fillBase}) has its own magic, so a verifier tells the content a clone
 * reads through from its base apart from every write; like a write stamp, it is foreign anywhere
 * but at its own sector.
 */
final class SectorStamp {

  static final int SECTOR_BYTES = ImageOptions.SECTOR_BYTES;

  /** What a read-back sector holds. */
  static final long ZERO = 0;

  /** A sector that is neither all zeros nor a valid stamp for where it was read. */
  static final long FOREIGN = -1;

  /** A sector that holds the base image's stamp for where it was read. */
  static final long BASE = -2;

  private static final long MAGIC = 0x4656_4B49_4C4C_5354L; // "FVKILLST"
  private static final long BASE_MAGIC = 0x4656_4B49_4C4C_4253L; // "FVKILLBS"
  private static final int HEADER_BYTES = 24;

  private SectorStamp() {}

  /**
   * Fills {@code sectorCount} sectors of {@code dst}, from its position on, with the stamps of
   * write {@code writeId} starting at virtual sector {@code firstSector}. The position advances.
   */
  static void fill(ByteBuffer dst, long writeId, long firstSector, int sectorCount) {
    if (isReserved(writeId)) {
      throw new IllegalArgumentException("write id " + writeId + " is reserved");
    }
    fill(dst, MAGIC, writeId, firstSector, sectorCount);
  }

  /**
   * Fills {@code sectorCount} sectors of {@code dst}, from its position on, with the base image's
   * stamps for virtual sectors from {@code firstSector} on. The position advances.
   */
  static void fillBase(ByteBuffer dst, long firstSector, int sectorCount) {
    fill(dst, BASE_MAGIC, BASE, firstSector, sectorCount);
  }

  private static void fill(
      ByteBuffer dst, long magic, long writeId, long firstSector, int sectorCount) {
    for (int i = 0; i < sectorCount; i++) {
      long sector = firstSector + i;
      dst.putLong(magic).putLong(writeId).putLong(sector);
      long state = seed(writeId, sector);
      for (int j = HEADER_BYTES; j < SECTOR_BYTES; j += Long.BYTES) {
        state += 0x9E37_79B9_7F4A_7C15L;
        dst.putLong(mix(state));
      }
    }
  }

  /**
   * Identifies the sector at absolute position {@code at} of {@code src}, read back from virtual
   * sector {@code sector}.
   *
   * @return the write id of a valid stamp for this sector, {@link #BASE} for a valid base stamp,
   *     {@link #ZERO} for an all-zero sector, or {@link #FOREIGN} for anything else
   */
  static long identify(ByteBuffer src, int at, long sector) {
    if (isZero(src, at)) {
      return ZERO;
    }
    long magic = src.getLong(at);
    long writeId = src.getLong(at + 8);
    boolean valid = magic == MAGIC ? !isReserved(writeId) : magic == BASE_MAGIC && writeId == BASE;
    if (!valid || src.getLong(at + 16) != sector) {
      return FOREIGN;
    }
    long state = seed(writeId, sector);
    for (int j = HEADER_BYTES; j < SECTOR_BYTES; j += Long.BYTES) {
      state += 0x9E37_79B9_7F4A_7C15L;
      if (src.getLong(at + j) != mix(state)) {
        return FOREIGN;
      }
    }
    return writeId;
  }

  private static boolean isReserved(long writeId) {
    return writeId == ZERO || writeId == FOREIGN || writeId == BASE;
  }

  private static boolean isZero(ByteBuffer src, int at) {
    for (int j = 0; j < SECTOR_BYTES; j += Long.BYTES) {
      if (src.getLong(at + j) != 0) {
        return false;
      }
    }
    return true;
  }

  private static long seed(long writeId, long sector) {
    return mix(writeId * 0xBF58_476D_1CE4_E5B9L ^ sector);
  }

  /** SplitMix64's finaliser: cheap, and every output bit depends on every input bit. */
  private static long mix(long z) {
    z = (z ^ (z >>> 30)) * 0xBF58_476D_1CE4_E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D0_49BB_1331_11EBL;
    return z ^ (z >>> 31);
  }
}
