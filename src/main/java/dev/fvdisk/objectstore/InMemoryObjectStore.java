package dev.fvdisk.objectstore;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ConcurrentSkipListMap;
import org.jspecify.annotations.Nullable;

/** An {@link ObjectStore} in memory, for tests of what is built on the port. */
public final class InMemoryObjectStore implements ObjectStore {

  private final ConcurrentSkipListMap<String, byte[]> objects = new ConcurrentSkipListMap<>();

  /**
   * The tag of each object's current version. Tags come from one counter and so never repeat; the
   * map and the objects change together under this store's monitor in {@link #putIfTag}, and every
   * other change drops the tag, so the next look-up tags the new bytes afresh.
   */
  private final java.util.Map<String, String> tags = new java.util.HashMap<>();

  private long nextTag;

  @Override
  public synchronized void put(String key, ByteBuffer data) {
    objects.put(key, bytes(data));
    tags.remove(key);
  }

  @Override
  public boolean putIfAbsent(String key, ByteBuffer data) {
    byte[] mine = bytes(data);
    byte[] there = objects.putIfAbsent(key, mine);
    return there == null || Arrays.equals(there, mine);
  }

  @Override
  public @Nullable ByteBuffer get(String key) {
    byte[] bytes = objects.get(key);
    return bytes == null ? null : ByteBuffer.wrap(bytes.clone()).asReadOnlyBuffer();
  }

  @Override
  public synchronized @Nullable Tagged getTagged(String key) {
    byte[] bytes = objects.get(key);
    if (bytes == null) {
      return null;
    }
    return new Tagged(ByteBuffer.wrap(bytes.clone()).asReadOnlyBuffer(), tagOf(key));
  }

  @Override
  public synchronized @Nullable String putIfTag(
      String key, ByteBuffer data, @Nullable String expectedTag) {
    byte[] mine = bytes(data);
    byte[] there = objects.get(key);
    boolean matches =
        expectedTag == null ? there == null : there != null && expectedTag.equals(tagOf(key));
    if (!matches) {
      return there != null && Arrays.equals(there, mine) ? tagOf(key) : null;
    }
    objects.put(key, mine);
    tags.remove(key);
    return tagOf(key);
  }

  private String tagOf(String key) {
    return tags.computeIfAbsent(key, k -> "t" + nextTag++);
  }

  @Override
  public List<String> list(String prefix) {
    List<String> keys = new ArrayList<>();
    for (String key : objects.tailMap(prefix, true).keySet()) {
      if (!key.startsWith(prefix)) {
        break;
      }
      keys.add(key);
    }
    return keys;
  }

  @Override
  public synchronized void delete(String key) {
    objects.remove(key);
    tags.remove(key);
  }

  private static byte[] bytes(ByteBuffer data) {
    byte[] bytes = new byte[data.remaining()];
    data.duplicate().get(bytes);
    return bytes;
  }
}
