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

  /** Removes the object, if there is one. */
  void delete(String key) throws IOException;
}
