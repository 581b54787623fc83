package dev.fvdisk.engine;

import dev.fvdisk.engine.CorruptImageException.Kind;
import dev.fvdisk.engine.io.Storage;
import dev.fvdisk.engine.spi.Checkpoint;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.zip.CRC32C;

/**
 * The block bitmap of a clone: one bit per block of the base image's range, set once the block's
 * content lives in this image rather than in the base.
 *
 * <p>On disk, block {@code n} is bit {@code n % 8} (least significant first) of byte {@code n / 8};
 * bits past the last block are zero. Like the chunk table there are two copies; a whole-bitmap
 * write goes to the inactive copy together with the table, and the header switches both at once and
 * holds the CRC-32C of the active copy's {@code ceil(blockCount / 8)} bytes.
 *
 * <p>In memory there are two bit sets. {@code fresh} is the truth for reads and writes: a bit is
 * set there as soon as the block's data has been written into the image. {@code durable} holds only
 * bits whose records reached the journal or a bitmap copy. A whole-bitmap write encodes the durable
 * bits (plus those being committed), never fresh ones whose data or chunk mapping might not be
 * durable yet.
 *
 * <p><b>Thread safety.</b> Bits are set atomically and never cleared.
 */
final class Bitmap {

  private final long blockCount;
  private final AtomicLongArray fresh;
  private final AtomicLongArray durable;

  Bitmap(long blockCount) {
    this.blockCount = blockCount;
    int words = Math.toIntExact(Header.ceilDiv(blockCount, 64));
    this.fresh = new AtomicLongArray(words);
    this.durable = new AtomicLongArray(words);
  }

  /** A bitmap with no blocks, for images without a base. */
  static Bitmap none() {
    return new Bitmap(0);
  }

  long blockCount() {
    return blockCount;
  }

  /** Bytes of one bitmap copy's content: one bit per block. */
  static long contentBytes(long blockCount) {
    return Header.ceilDiv(blockCount, 8);
  }

  /** Bytes reserved for one bitmap copy: whole 4 KiB pages. */
  static long regionBytes(long blockCount) {
    return Header.ceilDiv(contentBytes(blockCount), 4096) * 4096;
  }

  boolean isSet(long block) {
    return (fresh.get((int) (block >>> 6)) & (1L << block)) != 0;
  }

  /** Sets the block's bit once its data is in the image. */
  void set(long block) {
    int word = (int) (block >>> 6);
    long bit = 1L << block;
    fresh.getAndUpdate(word, w -> w | bit);
  }

  /** Records that the block's bit is durable. */
  void markDurable(long block) {
    int word = (int) (block >>> 6);
    long bit = 1L << block;
    fresh.getAndUpdate(word, w -> w | bit);
    durable.getAndUpdate(word, w -> w | bit);
  }

  /** Whether every block's bit is set. */
  boolean allSet() {
    return nextClear(0) == blockCount;
  }

  /** The number of blocks whose bit is set, counted word by word. */
  long setCount() {
    long n = 0;
    for (int i = 0; i < fresh.length(); i++) {
      n += Long.bitCount(fresh.get(i));
    }
    return n;
  }

  /** The first block at or after {@code fromBlock} whose bit is clear, or {@code blockCount}. */
  long nextClear(long fromBlock) {
    for (long b = fromBlock; b < blockCount; ) {
      long word = fresh.get((int) (b >>> 6));
      long inverted = ~word & (-1L << b);
      if (inverted != 0) {
        long found = (b & ~63L) + Long.numberOfTrailingZeros(inverted);
        return Math.min(found, blockCount);
      }
      b = (b | 63L) + 1;
    }
    return blockCount;
  }

  /**
   * The durable bits plus {@code committing}, whose data and chunk mappings are being made durable
   * by the same checkpoint; never fresh bits whose data might not be durable yet.
   */
  Checkpoint.BlockSet durableWith(long[] committing) {
    int words = durable.length();
    long[] bits = new long[words];
    for (int i = 0; i < words; i++) {
      bits[i] = durable.get(i);
    }
    for (long b : committing) {
      bits[(int) (b >>> 6)] |= 1L << b;
    }
    return new Checkpoint.BlockSet() {
      @Override
      public long blockCount() {
        return blockCount;
      }

      @Override
      public long word(int wordIndex) {
        return bits[wordIndex];
      }
    };
  }

  /** A copy of the bits as they are now, word by word (for a snapshot of the clone). */
  long[] words() {
    long[] words = new long[fresh.length()];
    for (int i = 0; i < words.length; i++) {
      words[i] = fresh.get(i);
    }
    return words;
  }

  /** Whether block {@code block} is set in a copy made by {@link #words}. */
  static boolean isSet(long[] words, long block) {
    return (words[(int) (block >>> 6)] & (1L << block)) != 0;
  }

  /** A copy made by {@link #words} in the on-disk layout: {@link #contentBytes} bytes. */
  static ByteBuffer encode(long[] words, long blockCount) {
    ByteBuffer longs = ByteBuffer.allocate(words.length * 8).order(ByteOrder.LITTLE_ENDIAN);
    for (long w : words) {
      longs.putLong(w);
    }
    return longs.flip().limit(Math.toIntExact(contentBytes(blockCount))).slice();
  }

  /**
   * The words of bytes in the on-disk layout; the inverse of {@link #encode}. Little-endian bytes
   * read as little-endian longs keep bit n at bit n % 64 of word n / 64.
   */
  static long[] decode(ByteBuffer bytes, long blockCount) {
    long[] words = new long[Math.toIntExact(Header.ceilDiv(blockCount, 64))];
    ByteBuffer longs = ByteBuffer.allocate(words.length * 8).order(ByteOrder.LITTLE_ENDIAN);
    longs.put(bytes.duplicate()).clear();
    for (int i = 0; i < words.length; i++) {
      words[i] = longs.getLong(i * 8);
    }
    return words;
  }

  static int crc(ByteBuffer encoded) {
    CRC32C crc = new CRC32C();
    crc.update(encoded.duplicate().clear());
    return (int) crc.getValue();
  }

  /** Loads the active bitmap copy and verifies it against the header's checksum. */
  static Bitmap load(Storage storage, Header header) throws IOException {
    long blocks = header.baseBlockCount();
    if (blocks == 0) {
      return none();
    }
    ByteBuffer buf = ByteBuffer.allocate(Math.toIntExact(contentBytes(blocks)));
    long offset = header.activeBitmapOffset();
    storage.read(buf, offset);
    int crc = crc(buf);
    if (crc != header.bitmapCrc()) {
      throw new CorruptImageException(
          Kind.CORRUPT,
          String.format(
              "%s: block bitmap copy %d at offset %d: checksum 0x%08x, header expects 0x%08x",
              storage.description(), header.activeTable(), offset, crc, header.bitmapCrc()));
    }
    Bitmap bitmap = new Bitmap(blocks);
    long[] words = decode(buf.flip(), blocks);
    for (int i = 0; i < words.length; i++) {
      bitmap.durable.set(i, words[i]);
      bitmap.fresh.set(i, words[i]);
    }
    int tailBits = (int) (blocks & 7);
    if (tailBits != 0 && (buf.get(buf.capacity() - 1) & (0xFF << tailBits)) != 0) {
      throw new CorruptImageException(
          Kind.CORRUPT,
          storage.description()
              + ": block bitmap copy at offset "
              + offset
              + " has bits set past its last block "
              + (blocks - 1));
    }
    return bitmap;
  }
}
