package dev.fvdisk.engine.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * A {@link Storage} wrapper for crash tests: it counts writes and forces, keeps a shadow copy of
 * what is durable, and at a chosen write or force "crashes".
 *
 * <p><b>Durability model.</b> Reads and writes go to the wrapped storage, which therefore holds
 * what a process sees. Alongside, the wrapper keeps the durable state: the content as of the last
 * completed {@link #force()}, plus the list of writes and resizes issued since then. A force moves
 * that list into the durable state, exactly as {@link Storage} promises.
 *
 * <p><b>Crash modes.</b> To the engine every crash looks the same: the call that hits it, and every
 * later call, throws a {@link CrashedException}. The modes differ in what survives, which is what
 * {@link #survivingStorage} returns:
 *
 * <ul>
 *   <li>{@link Mode#LOSE_UNFORCED}: power fails just before write N. Only forced state survives;
 *       every unforced write and resize is lost. This is the strictest test of the engine's forces:
 *       anything acknowledged as durable without a force behind it disappears.
 *   <li>{@link Mode#KEEP_SOME_UNFORCED}: power fails just before write N, and of the writes since
 *       the last force, each 512-byte sector's piece reached the disk or not, at random (each
 *       unforced resize likewise). This finds ordering bugs, such as a journal record that reached
 *       the disk while the data it points at did not, or the second sector of a journal append
 *       surviving without the first.
 *   <li>{@link Mode#TEAR_WRITE}: power fails during write N on a disk without a volatile cache:
 *       every earlier write survives, forced or not, and only a prefix of write N's 512-byte
 *       sectors (possibly none) lands. Sectors are the unit of atomicity, so a tear never splits
 *       one.
 *   <li>{@link Mode#FAIL_FORCE}: force N fails with an I/O error and the device is gone. As after a
 *       failed {@code fsync}, some unforced writes reached the disk and the rest were dropped
 *       (chosen as for {@link Mode#KEEP_SOME_UNFORCED}).
 *   <li>{@link Mode#FAIL_WRITE_ONCE}: write N fails with an I/O error and stores nothing, but the
 *       storage keeps working, so the engine's error handling runs. Nothing is lost afterwards:
 *       {@link #survivingStorage} is the full current content.
 * </ul>
 *
 * <p>Unforced writes are lost per 512-byte sector, the unit a disk writes atomically, rather than
 * per whole write: a multi-sector write can half survive, in any pattern, as after a power cut. One
 * restriction keeps the model honest: a sector never shows a later write on top of a lost earlier
 * one, because a cache writes back a sector's latest content. Without it, two unforced writes to
 * different bytes of one sector could combine into content the sector never had.
 *
 * <p><b>Thread safety.</b> All methods are synchronized, so the durable state always corresponds to
 * a single order of operations.
 */
public final class CrashingStorage implements Storage {

  private static final int SECTOR_BYTES = 512;

  /** What survives a crash; see the class documentation. */
  public enum Mode {
    LOSE_UNFORCED,
    KEEP_SOME_UNFORCED,
    TEAR_WRITE,
    FAIL_FORCE,
    FAIL_WRITE_ONCE
  }

  /** Thrown by the call that hits the crash and by every call after it. */
  public static final class CrashedException extends IOException {
    private static final long serialVersionUID = 1L;

    CrashedException(String message) {
      super(message);
    }
  }

  /** Thrown by the one write that {@link Mode#FAIL_WRITE_ONCE} fails. */
  public static final class InjectedWriteException extends IOException {
    private static final long serialVersionUID = 1L;

    InjectedWriteException(String message) {
      super(message);
    }
  }

  private sealed interface Op permits WriteOp, ResizeOp {}

  private record WriteOp(long offsetBytes, byte[] data) implements Op {}

  private record ResizeOp(long sizeBytes) implements Op {}

  private final Storage delegate;
  private final SparseBytes durable;
  private final List<Op> unforced = new ArrayList<>();
  private long writeCount;
  private long forceCount;
  private Mode mode;
  private long triggerNumber = Long.MAX_VALUE;
  private long seed;
  private SparseBytes survivors;
  private boolean closed;

  private CrashingStorage(Storage delegate, SparseBytes durable) {
    this.delegate = delegate;
    this.durable = durable;
  }

  /**
   * Wraps {@code delegate}, taking its current content as durable. The delegate stays owned by the
   * caller: {@link #close()} does not close it.
   */
  public static CrashingStorage wrap(Storage delegate) throws IOException {
    return new CrashingStorage(delegate, SparseBytes.copyOf(delegate));
  }

  /**
   * Arms the crash: at write number {@code triggerNumber} (1-based; force number for {@link
   * Mode#FAIL_FORCE}), counted from when this storage was wrapped.
   *
   * @param seed chooses the tear point and which unforced writes survive
   */
  public synchronized void arm(Mode mode, long triggerNumber, long seed) {
    if (triggerNumber < 1) {
      throw new IllegalArgumentException("trigger number must be at least 1: " + triggerNumber);
    }
    this.mode = mode;
    this.triggerNumber = triggerNumber;
    this.seed = seed;
  }

  /** Loses power now: {@link Mode#LOSE_UNFORCED} or {@link Mode#KEEP_SOME_UNFORCED}. */
  public synchronized void crashNow(Mode powerLossMode, long seed) {
    if (powerLossMode != Mode.LOSE_UNFORCED && powerLossMode != Mode.KEEP_SOME_UNFORCED) {
      throw new IllegalArgumentException("not a power-loss mode: " + powerLossMode);
    }
    this.mode = powerLossMode;
    this.seed = seed;
    crash(null);
  }

  public synchronized long writeCount() {
    return writeCount;
  }

  public synchronized long forceCount() {
    return forceCount;
  }

  public synchronized boolean crashed() {
    return survivors != null;
  }

  /**
   * The bytes that survive, as a fresh storage: after a crash, what the mode lets survive; without
   * one, everything written so far (as after a process exit that left the OS running).
   */
  public synchronized MemoryStorage survivingStorage(String name) throws IOException {
    return survivingBytes().toMemoryStorage(name);
  }

  private SparseBytes survivingBytes() {
    if (survivors != null) {
      return survivors;
    }
    SparseBytes everything = durable.copy();
    for (Op op : unforced) {
      apply(everything, op);
    }
    return everything;
  }

  /**
   * The surviving bytes (see {@link #survivingStorage}) wrapped again, with those bytes as the
   * durable state: the machine after a reboot, ready for the next crash.
   */
  public synchronized CrashingStorage reboot(String name) throws IOException {
    SparseBytes bytes = survivingBytes();
    return new CrashingStorage(bytes.toMemoryStorage(name), bytes.copy());
  }

  /** Lets the bytes be opened again after {@link #close()}, as {@link MemoryStorage} does. */
  public synchronized CrashingStorage reopen() {
    closed = false;
    return this;
  }

  @Override
  public synchronized void read(ByteBuffer dst, long positionBytes) throws IOException {
    ensureUsable();
    delegate.read(dst, positionBytes);
  }

  @Override
  public synchronized void write(ByteBuffer src, long positionBytes) throws IOException {
    ensureUsable();
    writeCount++;
    byte[] data = new byte[src.remaining()];
    src.duplicate().get(data);
    if (writeCount == triggerNumber) {
      if (mode == Mode.FAIL_WRITE_ONCE) {
        throw new InjectedWriteException(
            description() + ": injected failure of write " + writeCount + " at " + positionBytes);
      }
      if (mode != Mode.FAIL_FORCE) {
        crash(new WriteOp(positionBytes, data));
        throw new CrashedException(
            description() + ": crashed at write " + writeCount + " (" + mode + ")");
      }
    }
    delegate.write(src, positionBytes);
    unforced.add(new WriteOp(positionBytes, data));
  }

  @Override
  public synchronized void force() throws IOException {
    ensureUsable();
    forceCount++;
    if (mode == Mode.FAIL_FORCE && forceCount == triggerNumber) {
      crash(null);
      throw new CrashedException(description() + ": force " + forceCount + " failed");
    }
    delegate.force();
    for (Op op : unforced) {
      apply(durable, op);
    }
    unforced.clear();
  }

  @Override
  public synchronized long sizeBytes() throws IOException {
    ensureUsable();
    return delegate.sizeBytes();
  }

  @Override
  public synchronized void resize(long sizeBytes) throws IOException {
    ensureUsable();
    delegate.resize(sizeBytes);
    unforced.add(new ResizeOp(sizeBytes));
  }

  @Override
  public String description() {
    return "crashing(" + delegate.description() + ")";
  }

  @Override
  public synchronized void close() throws IOException {
    closed = true;
    if (survivors != null) {
      throw new CrashedException(description() + ": crashed earlier");
    }
  }

  private void ensureUsable() throws IOException {
    if (survivors != null) {
      throw new CrashedException(description() + ": crashed earlier");
    }
    if (closed) {
      throw new IOException(description() + ": storage is closed");
    }
  }

  /** Freezes what survives; {@code inFlight} is the write the crash interrupted, if any. */
  private void crash(WriteOp inFlight) {
    // SplittableRandom, because java.util.Random gives nearly equal first values for nearby seeds.
    SplittableRandom random = new SplittableRandom(seed);
    SparseBytes result = durable.copy();
    switch (mode) {
      case LOSE_UNFORCED -> {}
      case KEEP_SOME_UNFORCED, FAIL_FORCE -> applySomeUnforced(result, random);
      case TEAR_WRITE -> {
        for (Op op : unforced) {
          apply(result, op);
        }
        if (inFlight != null) {
          apply(result, tornPrefix(inFlight, random));
        }
      }
      default -> throw new IllegalStateException("mode " + mode + " does not crash");
    }
    survivors = result;
  }

  /**
   * Applies a random selection of the unforced operations to {@code target}, sector by sector.
   *
   * <p>Walking backwards, each piece of a write that falls into one 512-byte sector survives at
   * random, or because a later write to the same sector survived: a cache writes back a sector's
   * latest content, so a sector never shows a newer write on top of a lost older one. Each sector
   * therefore ends up as its durable content plus a prefix of its own unforced writes, while
   * different sectors of one write, and different writes, survive independently.
   */
  private void applySomeUnforced(SparseBytes target, SplittableRandom random) {
    List<List<long[]>> keptPieces = new ArrayList<>(unforced.size());
    boolean[] keptResizes = new boolean[unforced.size()];
    BitSet sectorsWithLaterSurvivor = new BitSet();
    for (int i = unforced.size() - 1; i >= 0; i--) {
      List<long[]> pieces = new ArrayList<>();
      if (unforced.get(i) instanceof WriteOp w) {
        long start = w.offsetBytes();
        long end = start + w.data().length;
        for (long sector = start / SECTOR_BYTES; sector * SECTOR_BYTES < end; sector++) {
          boolean keep = random.nextBoolean() || sectorsWithLaterSurvivor.get((int) sector);
          if (keep) {
            sectorsWithLaterSurvivor.set((int) sector);
            pieces.add(
                new long[] {
                  Math.max(start, sector * SECTOR_BYTES), Math.min(end, (sector + 1) * SECTOR_BYTES)
                });
          }
        }
      } else {
        keptResizes[i] = random.nextBoolean();
      }
      keptPieces.add(pieces);
    }
    for (int i = 0; i < unforced.size(); i++) {
      Op op = unforced.get(i);
      if (op instanceof WriteOp w) {
        for (long[] piece : keptPieces.get(unforced.size() - 1 - i)) {
          int from = (int) (piece[0] - w.offsetBytes());
          int to = (int) (piece[1] - w.offsetBytes());
          target.write(piece[0], Arrays.copyOfRange(w.data(), from, to));
        }
      } else if (keptResizes[i]) {
        apply(target, op);
      }
    }
  }

  /** The part of {@code write} that lands when it is torn: whole sectors from its start. */
  private static WriteOp tornPrefix(WriteOp write, SplittableRandom random) {
    long start = write.offsetBytes();
    long end = start + write.data().length;
    long firstSector = start / SECTOR_BYTES;
    long sectorCount = (end + SECTOR_BYTES - 1) / SECTOR_BYTES - firstSector;
    long landedSectors = random.nextInt((int) Math.min(sectorCount, Integer.MAX_VALUE));
    long cut = Math.max(start, (firstSector + landedSectors) * SECTOR_BYTES);
    return new WriteOp(start, Arrays.copyOf(write.data(), (int) (cut - start)));
  }

  private static void apply(SparseBytes target, Op op) {
    if (op instanceof WriteOp w) {
      target.write(w.offsetBytes(), w.data());
    } else if (op instanceof ResizeOp r) {
      target.resize(r.sizeBytes());
    }
  }

  /** Sparse bytes in 4 KiB pages: the durable shadow, cheap to copy when it is mostly holes. */
  private static final class SparseBytes {
    private static final int PAGE_BYTES = 4096;
    private final Map<Long, byte[]> pages = new HashMap<>();
    private long sizeBytes;

    static SparseBytes copyOf(Storage storage) throws IOException {
      SparseBytes copy = new SparseBytes();
      long size = storage.sizeBytes();
      ByteBuffer buf = ByteBuffer.allocate(64 * PAGE_BYTES);
      for (long offset = 0; offset < size; offset += buf.capacity()) {
        buf.clear().limit((int) Math.min(buf.capacity(), size - offset));
        storage.read(buf, offset);
        byte[] bytes = Arrays.copyOf(buf.array(), buf.limit());
        for (int p = 0; p < bytes.length; p += PAGE_BYTES) {
          int n = Math.min(PAGE_BYTES, bytes.length - p);
          if (!isZero(bytes, p, n)) {
            copy.write(offset + p, Arrays.copyOfRange(bytes, p, p + n));
          }
        }
      }
      copy.sizeBytes = size;
      return copy;
    }

    SparseBytes copy() {
      SparseBytes copy = new SparseBytes();
      pages.forEach((index, page) -> copy.pages.put(index, page.clone()));
      copy.sizeBytes = sizeBytes;
      return copy;
    }

    void write(long offsetBytes, byte[] data) {
      long position = offsetBytes;
      int done = 0;
      while (done < data.length) {
        long pageIndex = position / PAGE_BYTES;
        int inPage = (int) (position % PAGE_BYTES);
        int n = Math.min(data.length - done, PAGE_BYTES - inPage);
        byte[] page = pages.computeIfAbsent(pageIndex, k -> new byte[PAGE_BYTES]);
        System.arraycopy(data, done, page, inPage, n);
        done += n;
        position += n;
      }
      sizeBytes = Math.max(sizeBytes, offsetBytes + data.length);
    }

    void resize(long newSizeBytes) {
      if (newSizeBytes < sizeBytes) {
        long firstWholePage = (newSizeBytes + PAGE_BYTES - 1) / PAGE_BYTES;
        pages.keySet().removeIf(index -> index >= firstWholePage);
        byte[] partial = pages.get(newSizeBytes / PAGE_BYTES);
        if (partial != null) {
          Arrays.fill(partial, (int) (newSizeBytes % PAGE_BYTES), PAGE_BYTES, (byte) 0);
        }
      }
      sizeBytes = newSizeBytes;
    }

    MemoryStorage toMemoryStorage(String name) throws IOException {
      MemoryStorage storage = new MemoryStorage(name);
      storage.resize(sizeBytes);
      for (Map.Entry<Long, byte[]> e : pages.entrySet()) {
        long offset = e.getKey() * PAGE_BYTES;
        int n = (int) Math.min(PAGE_BYTES, sizeBytes - offset);
        if (n > 0) {
          storage.write(ByteBuffer.wrap(e.getValue(), 0, n), offset);
        }
      }
      return storage;
    }

    private static boolean isZero(byte[] bytes, int from, int length) {
      for (int i = from; i < from + length; i++) {
        if (bytes[i] != 0) {
          return false;
        }
      }
      return true;
    }
  }
}
