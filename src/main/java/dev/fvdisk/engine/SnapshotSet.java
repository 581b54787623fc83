package dev.fvdisk.engine;

import dev.fvdisk.engine.CorruptImageException.Kind;
import dev.fvdisk.engine.spi.SnapshotEvent;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongConsumer;
import java.util.zip.CRC32C;
import org.jspecify.annotations.Nullable;

/**
 * An image's snapshots, and the chunk versions that only snapshots still hold.
 *
 * <p><b>The model.</b> Snapshots are kept oldest first. Each one has a <em>delta</em>: for the
 * chunks that changed after it was taken and before the next snapshot was (or, for the newest,
 * until now), the location the chunk had when it was taken ({@code -1}: it had none and read as
 * zeros). A snapshot reads a chunk from the first delta, its own or a newer one's, that holds the
 * chunk, and else from the live table: a chunk that never changed since is shared with the image.
 *
 * <p>So the first change of a chunk after the newest snapshot (a write, which then gives the chunk
 * a new slot holding a {@linkplain PartialVersions partial version} over the old one, or a
 * whole-chunk zero, which then keeps the slot) first <em>preserves</em> the chunk's location in the
 * newest delta; later changes of it need nothing. A slot moves from the live table into exactly one
 * delta and never back, so every slot has one holder: the live table or one delta. Deleting a
 * snapshot hands each entry of its delta to the next older snapshot when that one does not hold the
 * chunk itself (it read the chunk through the deleted one), and frees the slot otherwise; deleting
 * the oldest frees its whole delta. Taking a snapshot copies nothing.
 *
 * <p>The set is stored as one <em>directory</em> ({@link #encode}) when the image writes a
 * checkpoint, and changed by journal records in between (docs/format.md).
 *
 * <p><b>Thread safety.</b> The list of snapshots changes only while the image is held exclusively
 * (create, delete, load); deltas change under the chunk's mapping lock ({@link #preserve}) and may
 * be read at any time.
 */
final class SnapshotSet {

  /** Most snapshots one image may have at once. */
  static final int MAX_SNAPSHOTS = 255;

  /** Longest snapshot name, in bytes of UTF-8. */
  static final int MAX_NAME_BYTES = 64;

  static final int DIRECTORY_MAGIC = 0x44535646; // "FVSD" read as a little-endian int
  private static final int DIRECTORY_HEADER_BYTES = 12;
  private static final int SNAPSHOT_HEADER_BYTES = 28;
  private static final int ENTRY_BYTES = 8;

  /** Snapshot flag: the snapshot reads blocks from the base; a bitmap copy's place follows. */
  private static final int SNAPSHOT_READS_BASE = 1;

  private static final int BASE_BLOCKS_BYTES = 12;
  static final int PARTIALS_MAGIC = 0x56505646; // "FVPV" read as a little-endian int
  private static final int PARTIAL_ENTRY_BYTES = 8 + PartialVersions.BITMAP_WORDS * 8;

  /**
   * One snapshot.
   *
   * @param id its number, unique in the image, ascending with age
   * @param sizeBytes the virtual size of the image when it was taken; it reads as that many bytes
   */
  record Snapshot(
      int id, String name, long createdAtMillis, long sizeBytes, @Nullable BaseBlocks baseBlocks) {

    Snapshot(int id, String name, long createdAtMillis, long sizeBytes) {
      this(id, name, createdAtMillis, sizeBytes, null);
    }

    /** The journal's record of this snapshot being taken. */
    SnapshotEvent.Created createdEvent() {
      return baseBlocks == null
          ? new SnapshotEvent.Created(id, name, createdAtMillis, sizeBytes)
          : new SnapshotEvent.Created(
              id,
              name,
              createdAtMillis,
              sizeBytes,
              baseBlocks.firstSlot(),
              baseBlocks.slotCount(),
              baseBlocks.crc());
    }
  }

  /**
   * Where a snapshot of a clone that still read its base keeps the block bitmap as it was then: a
   * block whose bit is clear reads from the base, the others from the snapshot's chunk versions.
   * Bits are only ever set, so the copy never changes; it is written into {@code slotCount}
   * consecutive chunk slots from {@code firstSlot} before the snapshot is recorded, and freed with
   * the snapshot.
   *
   * @param crc the CRC-32C of the bitmap's bytes
   */
  record BaseBlocks(long firstSlot, int slotCount, int crc) {}

  private final int chunkSizeBytes;
  private volatile List<Snapshot> snapshots = List.of();
  private final Map<Integer, Map<Integer, Long>> deltas = new ConcurrentHashMap<>();
  private final Map<Integer, long[]> baseBlockBits = new ConcurrentHashMap<>();
  private final AtomicLong heldSlots = new AtomicLong();
  private int nextId = 1;
  private final PartialVersions partials;

  SnapshotSet(int chunkSizeBytes) {
    this.chunkSizeBytes = chunkSizeBytes;
    this.partials = new PartialVersions(chunkSizeBytes);
  }

  /** The chunk versions, live or kept, that hold only some of their blocks. */
  PartialVersions partials() {
    return partials;
  }

  /** The snapshots, oldest first. */
  List<Snapshot> list() {
    return snapshots;
  }

  boolean isEmpty() {
    return snapshots.isEmpty();
  }

  @Nullable Snapshot find(String name) {
    for (Snapshot s : snapshots) {
      if (s.name().equals(name)) {
        return s;
      }
    }
    return null;
  }

  @Nullable Snapshot byId(int id) {
    for (Snapshot s : snapshots) {
      if (s.id() == id) {
        return s;
      }
    }
    return null;
  }

  /** The newest snapshot, or null when there is none. */
  @Nullable Snapshot newest() {
    List<Snapshot> all = snapshots;
    return all.isEmpty() ? null : all.get(all.size() - 1);
  }

  /** Why a snapshot called {@code name} cannot be added now, or null when it can. */
  @Nullable String refusal(String name) {
    int bytes = name.getBytes(StandardCharsets.UTF_8).length;
    if (bytes == 0 || bytes > MAX_NAME_BYTES) {
      return "a snapshot name has 1 to " + MAX_NAME_BYTES + " bytes of UTF-8, not " + bytes;
    }
    if (find(name) != null) {
      return "the image has a snapshot called \"" + name + "\" already";
    }
    if (snapshots.size() >= MAX_SNAPSHOTS) {
      return "the image has " + MAX_SNAPSHOTS + " snapshots, the most it may have";
    }
    return null;
  }

  /** Adds a new newest snapshot of an image that reads no base; see the other {@code create}. */
  Snapshot create(String name, long createdAtMillis, long sizeBytes) {
    return create(name, createdAtMillis, sizeBytes, null, null);
  }

  /**
   * Adds a new newest snapshot with the next id; the caller checked {@link #refusal}.
   *
   * @param baseBlocks for a clone that still reads its base, where the copy of its bitmap {@code
   *     bits} (as {@link Bitmap#words}) was written; else null
   */
  Snapshot create(
      String name,
      long createdAtMillis,
      long sizeBytes,
      @Nullable BaseBlocks baseBlocks,
      long @Nullable [] bits) {
    Snapshot s = new Snapshot(nextId, name, createdAtMillis, sizeBytes, baseBlocks);
    add(s);
    if (bits != null) {
      baseBlockBits.put(s.id(), bits);
    }
    return s;
  }

  /**
   * The bitmap a snapshot of a clone keeps (bit {@code b % 64} of word {@code b / 64} set when
   * block {@code b} was in the image), or null for a snapshot that reads no base.
   */
  long @Nullable [] baseBlockBits(int snapshotId) {
    return baseBlockBits.get(snapshotId);
  }

  /** Whether some snapshot still reads blocks from the base. */
  boolean anyReadsBase() {
    for (Snapshot s : snapshots) {
      if (s.baseBlocks() != null) {
        return true;
      }
    }
    return false;
  }

  /**
   * After loading: gives each snapshot that keeps a bitmap copy its bits, which {@code reader}
   * reads and checks against the recorded checksum.
   */
  void loadBaseBlockBits(BaseBlockReader reader) throws IOException {
    for (Snapshot s : snapshots) {
      if (s.baseBlocks() != null && !baseBlockBits.containsKey(s.id())) {
        baseBlockBits.put(s.id(), reader.read(s));
      }
    }
  }

  /** Reads the bitmap copy of a snapshot; see {@link #loadBaseBlockBits}. */
  interface BaseBlockReader {
    long[] read(Snapshot s) throws IOException;
  }

  /**
   * Adds a snapshot as a journal or directory recorded it.
   *
   * @return why it does not fit the set (an id not above the newest, a name taken), else null
   */
  @Nullable String add(Snapshot s) {
    Snapshot newest = newest();
    if (newest != null && s.id() <= newest.id()) {
      return "snapshot id " + s.id() + " is not above the newest, " + newest.id();
    }
    if (s.id() <= 0) {
      return "snapshot id " + s.id() + " is not positive";
    }
    if (find(s.name()) != null) {
      return "two snapshots are called \"" + s.name() + "\"";
    }
    deltas.put(s.id(), new ConcurrentHashMap<>());
    if (s.baseBlocks() != null) {
      heldSlots.addAndGet(s.baseBlocks().slotCount());
    }
    List<Snapshot> grown = new ArrayList<>(snapshots);
    grown.add(s);
    snapshots = List.copyOf(grown);
    nextId = Math.max(nextId, s.id() + 1);
    return null;
  }

  /**
   * Whether a change of chunk {@code chunk} must first {@link #preserve} its location for the
   * newest snapshot: there is one, the chunk lies inside it, and it has not changed since.
   */
  boolean needsPreserve(int chunk) {
    Snapshot newest = newest();
    return newest != null
        && chunk < chunkCount(newest)
        && !deltas.get(newest.id()).containsKey(chunk);
  }

  /**
   * Records where {@code chunk} was ({@code -1}: nowhere) when snapshot {@code snapshotId} was
   * taken, unless its delta holds the chunk already.
   *
   * @return true when recorded; false when held already or there is no such snapshot
   */
  boolean preserve(int snapshotId, int chunk, long location) {
    Map<Integer, Long> delta = deltas.get(snapshotId);
    boolean added = delta != null && delta.putIfAbsent(chunk, location) == null;
    if (added && location >= 0) {
      heldSlots.incrementAndGet();
    }
    return added;
  }

  /**
   * Where snapshot {@code snapshotId} reads chunk {@code chunk}: the first delta from its own on
   * that holds the chunk, else {@code liveLocation}. -1 means zeros.
   */
  long resolve(int snapshotId, int chunk, long liveLocation) {
    boolean reached = false;
    for (Snapshot s : snapshots) {
      reached |= s.id() == snapshotId;
      if (reached) {
        Long held = deltas.get(s.id()).get(chunk);
        if (held != null) {
          return held;
        }
      }
    }
    if (!reached) {
      throw new IllegalArgumentException("no snapshot " + snapshotId);
    }
    return liveLocation;
  }

  /**
   * Removes a snapshot: entries of its delta that the next older snapshot reads through it move to
   * that snapshot's delta; the slots of the others are returned, for the caller to free once the
   * removal is durable.
   */
  long[] delete(int snapshotId) {
    List<Snapshot> all = snapshots;
    int index = indexOf(snapshotId);
    Map<Integer, Long> older = index == 0 ? null : deltas.get(all.get(index - 1).id());
    int olderChunks = index == 0 ? 0 : chunkCount(all.get(index - 1));
    long[] freed = new long[0];
    int n = 0;
    for (Map.Entry<Integer, Long> e : deltas.get(snapshotId).entrySet()) {
      long location = e.getValue();
      if (!frees(older, olderChunks, e.getKey())) {
        older.put(e.getKey(), location);
      } else if (location >= 0) {
        if (n == freed.length) {
          freed = Arrays.copyOf(freed, Math.max(8, n * 2));
        }
        freed[n++] = location;
      }
    }
    // The bitmap copy of a snapshot of a clone goes with it.
    BaseBlocks baseBlocks = all.get(index).baseBlocks();
    if (baseBlocks != null) {
      freed = Arrays.copyOf(freed, n + baseBlocks.slotCount());
      for (int i = 0; i < baseBlocks.slotCount(); i++) {
        freed[n++] = baseBlocks.firstSlot() + i;
      }
    }
    List<Snapshot> shrunk = new ArrayList<>(all);
    shrunk.remove(index);
    snapshots = List.copyOf(shrunk);
    deltas.remove(snapshotId);
    baseBlockBits.remove(snapshotId);
    heldSlots.addAndGet(-n);
    return Arrays.copyOf(freed, n);
  }

  /** The slots {@link #delete} would free for snapshot {@code snapshotId}; changes nothing. */
  long[] slotsFreedBy(int snapshotId) {
    List<Snapshot> all = snapshots;
    int index = indexOf(snapshotId);
    Map<Integer, Long> older = index == 0 ? null : deltas.get(all.get(index - 1).id());
    int olderChunks = index == 0 ? 0 : chunkCount(all.get(index - 1));
    return deltas.get(snapshotId).entrySet().stream()
        .filter(e -> e.getValue() >= 0 && frees(older, olderChunks, e.getKey()))
        .mapToLong(Map.Entry::getValue)
        .toArray();
  }

  /**
   * Whether deleting a snapshot frees its entry for {@code chunk}, rather than handing it to the
   * next older snapshot ({@code older}, null for none), which read the chunk through it unless it
   * holds the chunk itself or the chunk lies past its size (the image grew in between).
   */
  private static boolean frees(@Nullable Map<Integer, Long> older, int olderChunks, int chunk) {
    return older == null || chunk >= olderChunks || older.containsKey(chunk);
  }

  private int indexOf(int snapshotId) {
    List<Snapshot> all = snapshots;
    for (int i = 0; i < all.size(); i++) {
      if (all.get(i).id() == snapshotId) {
        return i;
      }
    }
    throw new IllegalArgumentException("no snapshot " + snapshotId);
  }

  /**
   * Bytes that deleting the snapshot would free: slots of its delta that no older snapshot reads
   * through it.
   */
  long exclusiveBytes(int snapshotId) {
    Map<Integer, Long> older = null;
    int olderChunks = 0;
    for (Snapshot s : snapshots) {
      if (s.id() == snapshotId) {
        long slots = 0;
        for (Map.Entry<Integer, Long> e : deltas.get(s.id()).entrySet()) {
          if (e.getValue() >= 0
              && (older == null || e.getKey() >= olderChunks || older.containsKey(e.getKey()))) {
            slots++;
          }
        }
        if (s.baseBlocks() != null) {
          slots += s.baseBlocks().slotCount();
        }
        return slots * chunkSizeBytes;
      }
      older = deltas.get(s.id());
      olderChunks = chunkCount(s);
    }
    throw new IllegalArgumentException("no snapshot " + snapshotId);
  }

  /**
   * The chunks that may read differently in snapshot {@code toId} (0: the live image, of {@code
   * toSizeBytes}) than in snapshot {@code fromId}: every chunk some delta from {@code fromId}'s up
   * to {@code toId}'s (excluded) holds, since a chunk enters the delta of the newest snapshot at
   * its first change after it, and deleting a snapshot keeps the union of the keys; and every chunk
   * from the one where {@code fromId}'s size ends, when the image grew since.
   *
   * @throws IllegalArgumentException when {@code toId} is not newer than {@code fromId}
   */
  BitSet changedChunks(int fromId, int toId, long toSizeBytes) {
    int toChunkCount = (int) Header.ceilDiv(toSizeBytes, chunkSizeBytes);
    BitSet changed = new BitSet(toChunkCount);
    boolean reached = false;
    long fromSizeBytes = -1;
    for (Snapshot s : snapshots) {
      if (s.id() == fromId) {
        reached = true;
        fromSizeBytes = s.sizeBytes();
      }
      if (s.id() == toId) {
        if (!reached || toId == fromId) {
          throw new IllegalArgumentException("snapshot " + toId + " is not newer than " + fromId);
        }
        break;
      }
      if (reached) {
        for (int chunk : deltas.get(s.id()).keySet()) {
          if (chunk < toChunkCount) {
            changed.set(chunk);
          }
        }
      }
    }
    if (!reached) {
      throw new IllegalArgumentException("no snapshot " + fromId);
    }
    if (fromSizeBytes < toSizeBytes) {
      // From the chunk where the older size ended: the grown part reads as the image has it now.
      changed.set((int) (fromSizeBytes / chunkSizeBytes), toChunkCount);
    }
    return changed;
  }

  /** How many slots the deltas hold; kept as they change, so asking costs nothing. */
  long heldSlotCount() {
    return heldSlots.get();
  }

  /** Calls {@code action} with every slot a delta or a snapshot's bitmap copy holds. */
  void forEachHeldSlot(LongConsumer action) {
    forEachDeltaSlot(action);
    for (Snapshot s : snapshots) {
      if (s.baseBlocks() != null) {
        for (int i = 0; i < s.baseBlocks().slotCount(); i++) {
          action.accept(s.baseBlocks().firstSlot() + i);
        }
      }
    }
  }

  /** Calls {@code action} with every slot a delta holds: the chunk versions snapshots keep. */
  private void forEachDeltaSlot(LongConsumer action) {
    for (Map<Integer, Long> delta : deltas.values()) {
      for (long location : delta.values()) {
        if (location >= 0) {
          action.accept(location);
        }
      }
    }
  }

  /**
   * After loading: drops entries of the newest delta that equal the chunk's live location. A
   * checkpoint records a preserved chunk's old location when the change that preserved it was not
   * durable yet; the chunk then has not changed since the snapshot after all, and must be preserved
   * again before its next change.
   */
  void dropUnchanged(ChunkTable live) {
    Snapshot newest = newest();
    if (newest != null) {
      deltas
          .get(newest.id())
          .entrySet()
          .removeIf(
              e -> {
                boolean unchanged =
                    e.getKey() < live.chunkCount()
                        && e.getValue() == live.physicalChunk(e.getKey());
                if (unchanged && e.getValue() >= 0) {
                  heldSlots.decrementAndGet();
                }
                return unchanged;
              });
    }
  }

  /**
   * After loading: forgets partial versions in slots neither the live table nor a delta holds
   * (freed since their record, or mapped by a change that was not durable).
   */
  void dropUnheldPartials(ChunkTable live) {
    if (partials.isEmpty()) {
      return;
    }
    Set<Long> held = new HashSet<>();
    for (int chunk = 0; chunk < live.chunkCount(); chunk++) {
      long slot = live.physicalChunk(chunk);
      if (slot >= 0) {
        held.add(slot);
      }
    }
    // Chunk versions only: a bitmap copy's slot may once have held a version whose record the
    // journal still has, and keeping that version would let a fill write over the copy.
    forEachDeltaSlot(held::add);
    partials.retain(held::contains);
  }

  private int chunkCount(Snapshot s) {
    return (int) Header.ceilDiv(s.sizeBytes(), chunkSizeBytes);
  }

  // ---- the directory ----

  /**
   * The set as a directory: magic, count, the next id (so that ids are never given twice, also
   * after every snapshot was deleted), then per snapshot its id, name, time, size and delta
   * (entries by ascending chunk, each the chunk and its location + 1, 0 for none); when there are
   * partial versions, a section of them (magic, count, then per version its slot, its backing slot
   * and the blocks whose data is sealed); and a CRC-32C of everything before it. Layout in
   * docs/format.md.
   */
  ByteBuffer encode() {
    List<Snapshot> all = snapshots;
    List<int[]> encodedDeltas = new ArrayList<>();
    int bytes = DIRECTORY_HEADER_BYTES + 4;
    for (Snapshot s : all) {
      Map<Integer, Long> delta = deltas.get(s.id());
      int[] chunks = delta.keySet().stream().mapToInt(Integer::intValue).sorted().toArray();
      int[] values = new int[chunks.length * 2];
      for (int i = 0; i < chunks.length; i++) {
        long location = delta.get(chunks[i]);
        values[2 * i] = chunks[i];
        values[2 * i + 1] = location < 0 ? 0 : Math.toIntExact(location + 1);
      }
      encodedDeltas.add(values);
      bytes +=
          SNAPSHOT_HEADER_BYTES
              + s.name().getBytes(StandardCharsets.UTF_8).length
              + (s.baseBlocks() == null ? 0 : BASE_BLOCKS_BYTES)
              + chunks.length * ENTRY_BYTES;
    }
    List<PartialVersions.Version> versions = new ArrayList<>();
    partials.all().forEach(versions::add);
    if (!versions.isEmpty()) {
      bytes += 8 + versions.size() * PARTIAL_ENTRY_BYTES;
    }
    ByteBuffer buf = ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
    buf.putInt(DIRECTORY_MAGIC).putInt(all.size()).putInt(nextId);
    for (int i = 0; i < all.size(); i++) {
      Snapshot s = all.get(i);
      byte[] name = s.name().getBytes(StandardCharsets.UTF_8);
      int[] values = encodedDeltas.get(i);
      BaseBlocks baseBlocks = s.baseBlocks();
      buf.putInt(s.id())
          .putShort((short) name.length)
          .putShort((short) (baseBlocks == null ? 0 : SNAPSHOT_READS_BASE))
          .putLong(s.createdAtMillis())
          .putLong(s.sizeBytes())
          .putInt(values.length / 2)
          .put(name);
      if (baseBlocks != null) {
        buf.putInt(Math.toIntExact(baseBlocks.firstSlot()))
            .putInt(baseBlocks.slotCount())
            .putInt(baseBlocks.crc());
      }
      for (int v : values) {
        buf.putInt(v);
      }
    }
    if (!versions.isEmpty()) {
      buf.putInt(PARTIALS_MAGIC).putInt(versions.size());
      for (PartialVersions.Version v : versions) {
        buf.putInt(Math.toIntExact(v.slot)).putInt(Math.toIntExact(v.backing));
        for (long word : v.sealedBits()) {
          buf.putLong(word);
        }
      }
    }
    buf.putInt(crc(buf, 0, buf.position()));
    return buf.flip();
  }

  /**
   * Reads a directory written by {@link #encode}.
   *
   * @param where names the directory in messages
   * @throws CorruptImageException when the checksum or the structure is wrong
   */
  static SnapshotSet decode(ByteBuffer bytes, int chunkSizeBytes, String where)
      throws CorruptImageException {
    ByteBuffer buf = bytes.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    int length = buf.remaining();
    int start = buf.position();
    if (length < DIRECTORY_HEADER_BYTES + 4
        || buf.getInt(start + length - 4) != crc(buf, start, start + length - 4)) {
      throw corrupt(where, "checksum mismatch or truncated");
    }
    if (buf.getInt() != DIRECTORY_MAGIC) {
      throw corrupt(where, "wrong magic");
    }
    int count = buf.getInt();
    int nextId = buf.getInt();
    if (count < 0 || count > MAX_SNAPSHOTS || nextId < 1) {
      throw corrupt(where, count + " snapshots (at most " + MAX_SNAPSHOTS + "), next id " + nextId);
    }
    SnapshotSet set = new SnapshotSet(chunkSizeBytes);
    set.nextId = nextId;
    Set<String> names = new HashSet<>();
    int end = start + length - 4;
    for (int i = 0; i < count; i++) {
      if (buf.position() + SNAPSHOT_HEADER_BYTES > end) {
        throw corrupt(where, "snapshot " + i + " is cut off");
      }
      int id = buf.getInt();
      int nameBytes = Short.toUnsignedInt(buf.getShort());
      int flags = Short.toUnsignedInt(buf.getShort());
      long createdAt = buf.getLong();
      long sizeBytes = buf.getLong();
      long entries = Integer.toUnsignedLong(buf.getInt());
      int extra = (flags & SNAPSHOT_READS_BASE) != 0 ? BASE_BLOCKS_BYTES : 0;
      if (nameBytes == 0
          || nameBytes > MAX_NAME_BYTES
          || sizeBytes <= 0
          || sizeBytes % 512 != 0
          || (flags & ~SNAPSHOT_READS_BASE) != 0
          || buf.position() + nameBytes + extra + entries * ENTRY_BYTES > end) {
        throw corrupt(
            where, "snapshot " + i + " has a bad name length, size, flags or entry count");
      }
      byte[] name = new byte[nameBytes];
      buf.get(name);
      BaseBlocks baseBlocks = null;
      if (extra != 0) {
        long first = Integer.toUnsignedLong(buf.getInt());
        long slots = Integer.toUnsignedLong(buf.getInt());
        int crc = buf.getInt();
        if (slots == 0 || first + slots > ChunkTable.MAX_PHYSICAL_CHUNKS) {
          throw corrupt(
              where, "snapshot " + i + ": bitmap copy of " + slots + " slots at " + first);
        }
        baseBlocks = new BaseBlocks(first, (int) slots, crc);
      }
      Snapshot s =
          new Snapshot(
              id, new String(name, StandardCharsets.UTF_8), createdAt, sizeBytes, baseBlocks);
      String problem = names.add(s.name()) ? set.add(s) : "two snapshots are called " + s.name();
      if (problem != null) {
        throw corrupt(where, problem);
      }
      long chunks = set.chunkCount(s);
      long previous = -1;
      for (long e = 0; e < entries; e++) {
        long chunk = Integer.toUnsignedLong(buf.getInt());
        long value = Integer.toUnsignedLong(buf.getInt());
        if (chunk <= previous || chunk >= chunks || value > ChunkTable.MAX_PHYSICAL_CHUNKS) {
          throw corrupt(
              where,
              "snapshot " + s.name() + ": entry " + e + " (chunk " + chunk + ") is out of order");
        }
        previous = chunk;
        set.preserve(id, (int) chunk, value - 1);
      }
    }
    if (buf.position() != end) {
      decodePartials(buf, end, set, where);
    }
    return set;
  }

  private static void decodePartials(ByteBuffer buf, int end, SnapshotSet set, String where)
      throws CorruptImageException {
    if (buf.position() + 8 > end || buf.getInt() != PARTIALS_MAGIC) {
      throw corrupt(where, "bytes after the last snapshot are not partial versions");
    }
    long count = Integer.toUnsignedLong(buf.getInt());
    if (buf.position() + count * PARTIAL_ENTRY_BYTES != end) {
      throw corrupt(where, count + " partial versions do not fill the rest of the directory");
    }
    for (long i = 0; i < count; i++) {
      long slot = Integer.toUnsignedLong(buf.getInt());
      long backing = Integer.toUnsignedLong(buf.getInt());
      long[] bits = new long[PartialVersions.BITMAP_WORDS];
      for (int w = 0; w < bits.length; w++) {
        bits[w] = buf.getLong();
      }
      if (slot >= ChunkTable.MAX_PHYSICAL_CHUNKS
          || backing >= ChunkTable.MAX_PHYSICAL_CHUNKS
          || slot == backing) {
        throw corrupt(where, "partial version in slot " + slot + " over " + backing);
      }
      set.partials.load(slot, backing, bits);
    }
  }

  private static int crc(ByteBuffer buf, int from, int to) {
    CRC32C crc = new CRC32C();
    crc.update(buf.duplicate().limit(to).position(from));
    return (int) crc.getValue();
  }

  private static CorruptImageException corrupt(String where, String what) {
    return new CorruptImageException(Kind.CORRUPT, where + ": snapshot directory: " + what);
  }
}
