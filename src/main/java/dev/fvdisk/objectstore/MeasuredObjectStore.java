package dev.fvdisk.objectstore;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import org.jspecify.annotations.Nullable;

/**
 * An {@link ObjectStore} that tells a {@link Meter} about every request it passes on: which
 * operation, whether it succeeded, the bytes it moved and how long it took. Monitoring turns that
 * into meters; this package stays free of any metrics library.
 */
public final class MeasuredObjectStore implements ObjectStore {

  /** The operations, as meters name them. */
  public enum Operation {
    PUT,
    PUT_IF_ABSENT,
    PUT_IF_TAG,
    GET,
    LIST,
    DELETE
  }

  /** Receives one call per request; must be cheap and thread-safe. */
  public interface Meter {
    /**
     * @param bytes uploaded (put) or downloaded (get); 0 for the others and for failures
     */
    void requested(Operation operation, boolean succeeded, long bytes, long nanos);
  }

  private final ObjectStore inner;
  private final Meter meter;

  public MeasuredObjectStore(ObjectStore inner, Meter meter) {
    this.inner = inner;
    this.meter = meter;
  }

  @Override
  public void put(String key, ByteBuffer data) throws IOException {
    long started = System.nanoTime();
    boolean ok = false;
    try {
      inner.put(key, data);
      ok = true;
    } finally {
      meter.requested(Operation.PUT, ok, ok ? data.remaining() : 0, System.nanoTime() - started);
    }
  }

  @Override
  public boolean putIfAbsent(String key, ByteBuffer data) throws IOException {
    long started = System.nanoTime();
    boolean ok = false;
    try {
      boolean created = inner.putIfAbsent(key, data);
      ok = true;
      return created;
    } finally {
      meter.requested(
          Operation.PUT_IF_ABSENT, ok, ok ? data.remaining() : 0, System.nanoTime() - started);
    }
  }

  @Override
  public @Nullable ByteBuffer get(String key) throws IOException {
    long started = System.nanoTime();
    ByteBuffer data = null;
    boolean ok = false;
    try {
      data = inner.get(key);
      ok = true;
      return data;
    } finally {
      meter.requested(
          Operation.GET, ok, data == null ? 0 : data.remaining(), System.nanoTime() - started);
    }
  }

  @Override
  public @Nullable Tagged getTagged(String key) throws IOException {
    long started = System.nanoTime();
    Tagged tagged = null;
    boolean ok = false;
    try {
      tagged = inner.getTagged(key);
      ok = true;
      return tagged;
    } finally {
      meter.requested(
          Operation.GET,
          ok,
          tagged == null ? 0 : tagged.data().remaining(),
          System.nanoTime() - started);
    }
  }

  @Override
  public @Nullable String putIfTag(String key, ByteBuffer data, @Nullable String expectedTag)
      throws IOException {
    long started = System.nanoTime();
    boolean ok = false;
    try {
      String tag = inner.putIfTag(key, data, expectedTag);
      ok = true;
      return tag;
    } finally {
      meter.requested(
          Operation.PUT_IF_TAG, ok, ok ? data.remaining() : 0, System.nanoTime() - started);
    }
  }

  @Override
  public List<String> list(String prefix) throws IOException {
    long started = System.nanoTime();
    boolean ok = false;
    try {
      List<String> keys = inner.list(prefix);
      ok = true;
      return keys;
    } finally {
      meter.requested(Operation.LIST, ok, 0, System.nanoTime() - started);
    }
  }

  @Override
  public void delete(String key) throws IOException {
    long started = System.nanoTime();
    boolean ok = false;
    try {
      inner.delete(key);
      ok = true;
    } finally {
      meter.requested(Operation.DELETE, ok, 0, System.nanoTime() - started);
    }
  }
}
