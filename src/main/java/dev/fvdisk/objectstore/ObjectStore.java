package dev.fvdisk.objectstore;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import org.jspecify.annotations.Nullable;

/**
 * Whole objects by key. Objects are written whole and read whole; each carries the CRC-32C of its
 * bytes, and a read whose bytes do not match it fails with {@link CorruptObjectException} rather
 * than return them. A store that cannot be reached fails with {@link StoreUnavailableException}.
 * Safe to share between threads.
 */
public interface ObjectStore {

  /** Stores {@code data} under {@code key}, replacing what was there. */
  void put(String key, ByteBuffer data) throws IOException;

  /**
   * Stores {@code data} under {@code key} only if no object has that key: of several callers racing
   * for one key with different data, exactly one gets true. True also when the key already holds
   * exactly {@code data}, as after a retried request whose first attempt landed; callers that race
   * therefore put something unique to them in the data.
   */
  boolean putIfAbsent(String key, ByteBuffer data) throws IOException;

  /** The object's bytes, checked against its CRC-32C; null when there is none. */
  @Nullable ByteBuffer get(String key) throws IOException;

  /** The keys that start with {@code prefix}, in ascending order. */
  List<String> list(String prefix) throws IOException;

  /**
   * The object's bytes, checked as {@link #get} checks them, with the store's tag for this version
   * of it (its entity tag); null when there is none.
   */
  @Nullable Tagged getTagged(String key) throws IOException;

  /**
   * Stores {@code data} under {@code key} only if the object is still the version {@code
   * expectedTag} names, or, for a null tag, only if there is none: a compare-and-set, for small
   * objects that several processes take turns to replace (a lease). Returns the new version's tag,
   * or null when the condition failed and nothing was stored. As with {@link #putIfAbsent}, a retry
   * whose first attempt landed is recognised by equal bytes, so callers put something unique to
   * each write in the data.
   */
  @Nullable String putIfTag(String key, ByteBuffer data, @Nullable String expectedTag)
      throws IOException;

  /** An object's bytes and the tag of that version of it. */
  record Tagged(ByteBuffer data, String tag) {}

  /** Removes the object, if there is one. */
  void delete(String key) throws IOException;
}
