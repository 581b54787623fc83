package dev.fvdisk.objectstore;

import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import org.jspecify.annotations.Nullable;

/**
 * One object of an image's log in the bucket, {@code log/<seq>}: what one force of a {@link
 * BucketStorage} made durable, created only if no object has that key. The byte layout is in {@code
 * docs/format.md} ("Images in a bucket"); every number is big-endian.
 *
 * <pre>
 *   u32  magic 'FVDL'        u8 format (1)     u8 kind (1 epoch, 2 commit, 3 checkpoint)
 *   u64  seq                 u64 epoch         u64 writer       u32 page bytes
 *   u64  size of the storage after this record
 *   u32  n, then n × page:   u64 index, u64 version seq (0: all zeros), u64 version writer, u32 crc
 *   u32  m, then m × extent: u64 offset, u32 length, the bytes
 *   checkpoint only:         u32 crc of the checkpoint object
 * </pre>
 *
 * @param pages pages that got a new version (an uploaded object, or all zeros) in this record
 * @param extents bytes written on top of their pages' versions, in order
 * @param checkpointCrc for a checkpoint record, the CRC-32C of its {@code cp/} object
 */
record LogRecord(
    Kind kind,
    long seq,
    long epoch,
    long writer,
    int pageBytes,
    long sizeBytes,
    List<PageVersion> pages,
    List<Extent> extents,
    int checkpointCrc) {

  private static final int MAGIC = 0x4656444C; // "FVDL"
  private static final int FORMAT = 1;

  enum Kind {
    /** A writer took the image: the first record of every writer's epoch. */
    EPOCH,
    /** Pages and extents one force made durable. */
    COMMIT,
    /** Like a commit, and the {@code cp/} object of the same seq holds every page after it. */
    CHECKPOINT
  }

  /**
   * A page's content as of some record: the object {@code p/<index>/<seq>-<writer>}, or zeros.
   *
   * @param seq the record that uploaded it; 0 for a page of zeros, which has no object
   */
  record PageVersion(long index, long seq, long writer, int crc) {
    static PageVersion zeros(long index) {
      return new PageVersion(index, 0, 0, 0);
    }

    boolean isZeros() {
      return seq == 0;
    }
  }

  /** Bytes at an offset of the storage, on top of the version of the page they fall in. */
  record Extent(long offset, byte[] bytes) {}

  ByteBuffer encode() {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream(64 + inlineBytes());
    try (DataOutputStream out = new DataOutputStream(bytes)) {
      out.writeInt(MAGIC);
      out.writeByte(FORMAT);
      out.writeByte(kind.ordinal() + 1);
      out.writeLong(seq);
      out.writeLong(epoch);
      out.writeLong(writer);
      out.writeInt(pageBytes);
      out.writeLong(sizeBytes);
      writePages(out, pages);
      out.writeInt(extents.size());
      for (Extent e : extents) {
        out.writeLong(e.offset());
        out.writeInt(e.bytes().length);
        out.write(e.bytes());
      }
      if (kind == Kind.CHECKPOINT) {
        out.writeInt(checkpointCrc);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return ByteBuffer.wrap(bytes.toByteArray());
  }

  int inlineBytes() {
    int n = 0;
    for (Extent e : extents) {
      n += e.bytes().length;
    }
    return n;
  }

  static LogRecord decode(String key, ByteBuffer data) throws IOException {
    try (DataInputStream in = input(data)) {
      if (in.readInt() != MAGIC || in.readUnsignedByte() != FORMAT) {
        throw new CorruptObjectException(key + ": not a log record of a known format");
      }
      int kind = in.readUnsignedByte();
      if (kind < 1 || kind > Kind.values().length) {
        throw new CorruptObjectException(key + ": unknown record kind " + kind);
      }
      long seq = in.readLong();
      long epoch = in.readLong();
      long writer = in.readLong();
      int pageBytes = in.readInt();
      long size = in.readLong();
      List<PageVersion> pages = readPages(in, key);
      int m = in.readInt();
      List<Extent> extents = new ArrayList<>(Math.min(m, 4096));
      for (int i = 0; i < m; i++) {
        long offset = in.readLong();
        int length = in.readInt();
        if (length < 0 || length > data.capacity()) {
          throw new CorruptObjectException(key + ": extent of " + length + " bytes");
        }
        byte[] b = new byte[length];
        in.readFully(b);
        extents.add(new Extent(offset, b));
      }
      Kind k = Kind.values()[kind - 1];
      int cpCrc = k == Kind.CHECKPOINT ? in.readInt() : 0;
      return new LogRecord(k, seq, epoch, writer, pageBytes, size, pages, extents, cpCrc);
    } catch (java.io.EOFException e) {
      throw new CorruptObjectException(key + ": record ends early");
    }
  }

  /**
   * The {@code cp/} object of a checkpoint: every page that is not all zeros, as of its record.
   *
   * <pre>
   *   u32 magic 'FVDC'  u64 seq  u64 writer  u32 page bytes  u64 size
   *   u32 n, then n × page as in a record
   * </pre>
   */
  record Checkpoint(long seq, long writer, int pageBytes, long sizeBytes, List<PageVersion> pages) {

    private static final int MAGIC = 0x46564443; // "FVDC"

    ByteBuffer encode() {
      ByteArrayOutputStream bytes = new ByteArrayOutputStream(32 + pages.size() * 28);
      try (DataOutputStream out = new DataOutputStream(bytes)) {
        out.writeInt(MAGIC);
        out.writeLong(seq);
        out.writeLong(writer);
        out.writeInt(pageBytes);
        out.writeLong(sizeBytes);
        writePages(out, pages);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
      return ByteBuffer.wrap(bytes.toByteArray());
    }

    static Checkpoint decode(String key, ByteBuffer data) throws IOException {
      try (DataInputStream in = input(data)) {
        if (in.readInt() != MAGIC) {
          throw new CorruptObjectException(key + ": not a checkpoint");
        }
        return new Checkpoint(
            in.readLong(), in.readLong(), in.readInt(), in.readLong(), readPages(in, key));
      } catch (java.io.EOFException e) {
        throw new CorruptObjectException(key + ": checkpoint ends early");
      }
    }
  }

  private static void writePages(DataOutputStream out, List<PageVersion> pages) throws IOException {
    out.writeInt(pages.size());
    for (PageVersion p : pages) {
      out.writeLong(p.index());
      out.writeLong(p.seq());
      out.writeLong(p.writer());
      out.writeInt(p.crc());
    }
  }

  private static List<PageVersion> readPages(DataInputStream in, String key) throws IOException {
    int n = in.readInt();
    if (n < 0) {
      throw new CorruptObjectException(key + ": " + n + " pages");
    }
    List<PageVersion> pages = new ArrayList<>(Math.min(n, 1 << 16));
    for (int i = 0; i < n; i++) {
      pages.add(new PageVersion(in.readLong(), in.readLong(), in.readLong(), in.readInt()));
    }
    return pages;
  }

  private static DataInputStream input(ByteBuffer data) {
    ByteBuffer d = data.duplicate();
    byte[] bytes = new byte[d.remaining()];
    d.get(bytes);
    return new DataInputStream(new java.io.ByteArrayInputStream(bytes));
  }

  static @Nullable Long seqOfKey(String key, String prefix) {
    String tail = key.substring(prefix.length());
    int end = tail.indexOf('-');
    try {
      return Long.parseLong(end < 0 ? tail : tail.substring(0, end));
    } catch (NumberFormatException e) {
      return null;
    }
  }
}
