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

  @Override
  public void put(String key, ByteBuffer data) {
    objects.put(key, bytes(data));
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
  public void delete(String key) {
    objects.remove(key);
  }

  private static byte[] bytes(ByteBuffer data) {
    byte[] bytes = new byte[data.remaining()];
    data.duplicate().get(bytes);
    return bytes;
  }
}
