package dev.fvdisk.objectstore;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import org.jspecify.annotations.Nullable;

/**
 * A store for tests that stops answering while {@link #down} is set: every request then fails as a
 * store that timed out does ({@link StoreUnavailableException}); the objects stay.
 */
public final class FlakyObjectStore implements ObjectStore {

  private final ObjectStore inner;
  private volatile boolean down;

  public FlakyObjectStore(ObjectStore inner) {
    this.inner = inner;
  }

  /** Stops or resumes answering. */
  public void down(boolean down) {
    this.down = down;
  }

  private void answerOrFail() throws IOException {
    if (down) {
      throw new StoreUnavailableException("object store: injected outage", new IOException());
    }
  }

  @Override
  public void put(String key, ByteBuffer data) throws IOException {
    answerOrFail();
    inner.put(key, data);
  }

  @Override
  public boolean putIfAbsent(String key, ByteBuffer data) throws IOException {
    answerOrFail();
    return inner.putIfAbsent(key, data);
  }

  @Override
  public @Nullable ByteBuffer get(String key) throws IOException {
    answerOrFail();
    return inner.get(key);
  }

  @Override
  public @Nullable Tagged getTagged(String key) throws IOException {
    answerOrFail();
    return inner.getTagged(key);
  }

  @Override
  public @Nullable String putIfTag(String key, ByteBuffer data, @Nullable String expectedTag)
      throws IOException {
    answerOrFail();
    return inner.putIfTag(key, data, expectedTag);
  }

  @Override
  public List<String> list(String prefix) throws IOException {
    answerOrFail();
    return inner.list(prefix);
  }

  @Override
  public void delete(String key) throws IOException {
    answerOrFail();
    inner.delete(key);
  }
}
