package dev.fvdisk.nbd;

import dev.fvdisk.service.DiskExtent;
import dev.fvdisk.service.Durability;
import dev.fvdisk.service.ExpectedVersion;
import dev.fvdisk.service.VirtualDisk;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * A virtual disk in memory for the protocol's tests: sectors never written or zeroed are ZERO
 * extents, written ones DATA. Counts flushes and durable changes so tests can see what a command
 * asked for.
 */
final class MemoryDisk implements VirtualDisk {

  private final String name;
  private final byte[] bytes;
  private final boolean[] written;
  private final boolean readOnly;

  /**
   * Called with the command's name on the serving thread before a read, write, zero or flush,
   * outside the disk's lock: tests record which thread served it, or make it slow.
   */
  volatile Consumer<String> beforeEach = command -> {};

  int flushes;
  int durableChanges;
  boolean closed;

  MemoryDisk(String name, int sizeBytes, boolean readOnly) {
    this.name = name;
    this.bytes = new byte[sizeBytes];
    this.written = new boolean[sizeBytes / 512];
    this.readOnly = readOnly;
  }

  @Override
  public String name() {
    return name;
  }

  @Override
  public long sizeBytes() {
    return bytes.length;
  }

  @Override
  public boolean readOnly() {
    return readOnly;
  }

  @Override
  public String version() {
    return "v";
  }

  @Override
  public void read(long offsetBytes, ByteBuffer dst) {
    beforeEach.accept("read");
    synchronized (this) {
      dst.put(bytes, (int) offsetBytes, dst.remaining());
    }
  }

  @Override
  public void write(long offsetBytes, ByteBuffer src, Durability durability) {
    beforeEach.accept(durability == Durability.DURABLE ? "durable write" : "write");
    synchronized (this) {
      writeLocked(offsetBytes, src, durability);
    }
  }

  private void writeLocked(long offsetBytes, ByteBuffer src, Durability durability) {
    int length = src.remaining();
    src.get(bytes, (int) offsetBytes, length);
    mark(offsetBytes, length, true);
    if (durability == Durability.DURABLE) {
      durableChanges++;
    }
  }

  @Override
  public void zero(long offsetBytes, long lengthBytes, Durability durability) {
    beforeEach.accept("zero");
    synchronized (this) {
      zeroLocked(offsetBytes, lengthBytes, durability);
    }
  }

  private void zeroLocked(long offsetBytes, long lengthBytes, Durability durability) {
    java.util.Arrays.fill(bytes, (int) offsetBytes, (int) (offsetBytes + lengthBytes), (byte) 0);
    if (durability == Durability.DURABLE) {
      durableChanges++;
    }
  }

  private void mark(long offset, long length, boolean value) {
    for (long s = offset / 512; s * 512 < offset + length; s++) {
      written[(int) s] = value;
    }
  }

  @Override
  public void flush() {
    beforeEach.accept("flush");
    synchronized (this) {
      flushes++;
    }
  }

  @Override
  public synchronized List<DiskExtent> extents(long offsetBytes, long lengthBytes, int max) {
    List<DiskExtent> out = new ArrayList<>();
    long end = offsetBytes + lengthBytes;
    long at = offsetBytes;
    while (at < end && out.size() < max) {
      boolean state = written[(int) (at / 512)];
      long next = (at / 512 + 1) * 512;
      while (next < end && written[(int) (next / 512)] == state) {
        next += 512;
      }
      next = Math.min(next, end);
      out.add(new DiskExtent(at, next - at, state ? DiskExtent.State.DATA : DiskExtent.State.ZERO));
      at = next;
    }
    return out;
  }

  @Override
  public void checkWrite(long offsetBytes, long lengthBytes) {}

  @Override
  public void holdExclusively(ExpectedVersion expected) {}

  @Override
  public void close() {
    closed = true;
  }
}
