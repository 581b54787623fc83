package dev.fvdisk.testing;

import java.nio.ByteBuffer;
import java.util.zip.CRC32C;

/**
 * Self-describing 512-byte sectors, the one format every crash and reliability test writes, in the
 * engine, over HTTP and (later) over NBD. Every sector a test writes names the image it was meant
 * for, the virtual sector it was meant for and the write it belongs to, and ends with a checksum;
 * the bytes between are a filler that is a pure function of those numbers. A sector read back is
 * therefore all zeros, a whole stamp of exactly one write (or of the base image) at exactly this
 * place, or foreign: torn, shifted, misplaced, from another image, or garbage.
 *
 * <pre>
 * offset size field (big-endian)
 *      0    8 magic "FVSTAMP1"
 *      8    8 image tag (each test image has its own)
 *     16    8 virtual sector index
 *     24    8 write id: &gt; 0 for a write, {@link #BASE} for a base image's content
 *     32  472 filler: a SplitMix64 stream seeded from image tag, write id and sector
 *    504    8 CRC-32C of bytes 0..503
 * </pre>
 */
public final class SectorStamp {

  public static final int SECTOR_BYTES = 512;

  /** An all-zero sector. */
  public static final long ZERO = 0;

  /** Anything that is neither zeros nor a valid stamp for the place it was read from. */
  public static final long FOREIGN = -1;

  /** The write id of a base image's content. */
  public static final long BASE = -2;

  /** The tag of the image an engine test writes, when it has only one (and a base). */
  public static final long IMAGE_TAG = 0x1F1F_0000_0000_0001L;

  /** The tag of that image's base. */
  public static final long BASE_TAG = 0x1F1F_0000_0000_0002L;

  private static final long MAGIC = 0x4656_5354_414D_5031L; // "FVSTAMP1"
  private static final int HEADER = 32;
  private static final int CHECKSUM_AT = SECTOR_BYTES - Long.BYTES;

  private SectorStamp() {}

  /**
   * Fills {@code sectorCount} sectors of {@code dst}, from its position on, with the stamps of
   * write {@code writeId} to image {@code imageTag} from virtual sector {@code firstSector} on. The
   * position advances.
   */
  public static void fill(
      ByteBuffer dst, long imageTag, long writeId, long firstSector, int sectorCount) {
    if (writeId == ZERO || writeId == FOREIGN) {
      throw new IllegalArgumentException("write id " + writeId + " is reserved");
    }
    CRC32C crc = new CRC32C();
    for (int i = 0; i < sectorCount; i++) {
      int start = dst.position();
      long sector = firstSector + i;
      dst.putLong(MAGIC).putLong(imageTag).putLong(sector).putLong(writeId);
      long state = seed(imageTag, writeId, sector);
      for (int j = HEADER; j < CHECKSUM_AT; j += Long.BYTES) {
        state += 0x9E37_79B9_7F4A_7C15L;
        dst.putLong(mix(state));
      }
      crc.reset();
      crc.update(dst.duplicate().position(start).limit(start + CHECKSUM_AT));
      dst.putLong(crc.getValue());
    }
  }

  /** Fills {@code bytes} (whole sectors) with the stamps of one write starting at a sector. */
  public static void fill(byte[] bytes, long imageTag, long writeId, long firstSector) {
    fill(ByteBuffer.wrap(bytes), imageTag, writeId, firstSector, bytes.length / SECTOR_BYTES);
  }

  /** Fills sectors with the content of the base image tagged {@code baseTag}. */
  public static void fillBase(ByteBuffer dst, long baseTag, long firstSector, int sectorCount) {
    fill(dst, baseTag, BASE, firstSector, sectorCount);
  }

  /**
   * Identifies the sector at absolute position {@code at} of {@code src}, read back from virtual
   * sector {@code sector} of the image tagged {@code imageTag}, whose base (if any) is tagged
   * {@code baseTag} (0: none).
   *
   * @return the write id, {@link #BASE}, {@link #ZERO}, or {@link #FOREIGN}
   */
  public static long identify(ByteBuffer src, int at, long sector, long imageTag, long baseTag) {
    boolean zero = true;
    for (int j = 0; j < SECTOR_BYTES && zero; j += Long.BYTES) {
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
    crc.update(src.duplicate().position(at).limit(at + CHECKSUM_AT));
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

  /** {@link #identify(ByteBuffer, int, long, long, long)} over an array. */
  public static long identify(byte[] bytes, int at, long sector, long imageTag, long baseTag) {
    return identify(ByteBuffer.wrap(bytes), at, sector, imageTag, baseTag);
  }

  private static long seed(long imageTag, long writeId, long sector) {
    return mix(mix(imageTag) ^ writeId * 0xBF58_476D_1CE4_E5B9L ^ sector);
  }

  /** SplitMix64's finaliser: cheap, and every output bit depends on every input bit. */
  private static long mix(long z) {
    z = (z ^ (z >>> 30)) * 0xBF58_476D_1CE4_E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D0_49BB_1331_11EBL;
    return z ^ (z >>> 31);
  }
}
