package dev.fvdisk.engine.io;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * {@link Storage} held in memory, in sparse pages so that large, mostly empty images cost little.
 *
 * <p>Used by tests and by anyone who wants a throw-away image. {@link #force()} does nothing:
 * memory has no cache to drain. All methods are synchronized; this storage favours being obviously
 * correct over being fast.
 */
public final class MemoryStorage implements Storage {

  private static final int PAGE_BYTES = 64 * 1024;

  private final String name;
  private final Map<Long, byte[]> pages = new HashMap<>();
  private long sizeBytes;
  private boolean closed;

  public MemoryStorage(String name) {
    this.name = name;
  }

  @Override
  public synchronized void read(ByteBuffer dst, long positionBytes) throws IOException {
    ensureOpen();
    if (positionBytes < 0 || positionBytes + dst.remaining() > sizeBytes) {
      throw new EOFException(
          name
              + ": read of "
              + dst.remaining()
              + " bytes at offset "
              + positionBytes
              + " hits end");
    }
    long position = positionBytes;
    while (dst.hasRemaining()) {
      long pageIndex = position / PAGE_BYTES;
      int inPage = (int) (position % PAGE_BYTES);
      int n = Math.min(dst.remaining(), PAGE_BYTES - inPage);
      byte[] page = pages.get(pageIndex);
      if (page == null) {
        for (int i = 0; i < n; i++) {
          dst.put((byte) 0);
        }
      } else {
        dst.put(page, inPage, n);
      }
      position += n;
    }
  }

  @Override
  public synchronized void write(ByteBuffer src, long positionBytes) throws IOException {
    ensureOpen();
    if (positionBytes < 0) {
      throw new IOException(name + ": negative write offset " + positionBytes);
    }
    long position = positionBytes;
    while (src.hasRemaining()) {
      long pageIndex = position / PAGE_BYTES;
      int inPage = (int) (position % PAGE_BYTES);
      int n = Math.min(src.remaining(), PAGE_BYTES - inPage);
      src.get(pages.computeIfAbsent(pageIndex, k -> new byte[PAGE_BYTES]), inPage, n);
      position += n;
    }
    sizeBytes = Math.max(sizeBytes, position);
  }

  @Override
  public synchronized void force() throws IOException {
    ensureOpen();
  }

  @Override
  public synchronized long sizeBytes() throws IOException {
    ensureOpen();
    return sizeBytes;
  }

  @Override
  public synchronized void resize(long newSizeBytes) throws IOException {
    ensureOpen();
    if (newSizeBytes < sizeBytes) {
      long firstDropped = (newSizeBytes + PAGE_BYTES - 1) / PAGE_BYTES;
      pages.keySet().removeIf(index -> index >= firstDropped);
      byte[] partial = pages.get(newSizeBytes / PAGE_BYTES);
      if (partial != null) {
        int inPage = (int) (newSizeBytes % PAGE_BYTES);
        Arrays.fill(partial, inPage, PAGE_BYTES, (byte) 0);
      }
    }
    sizeBytes = newSizeBytes;
  }

  @Override
  public String description() {
    return name;
  }

  /** Memory storage survives close, so a test can reopen the same bytes after a "restart". */
  public synchronized MemoryStorage reopen() {
    closed = false;
    return this;
  }

  @Override
  public synchronized void close() {
    closed = true;
  }

  private void ensureOpen() throws IOException {
    if (closed) {
      throw new IOException(name + ": storage is closed");
    }
  }
}
