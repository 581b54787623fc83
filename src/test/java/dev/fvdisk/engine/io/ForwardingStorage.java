package dev.fvdisk.engine.io;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * A storage that passes every call to another; test wrappers extend it and override only the calls
 * they slow down, count or make fail.
 */
public abstract class ForwardingStorage implements Storage {

  protected final Storage delegate;

  protected ForwardingStorage(Storage delegate) {
    this.delegate = delegate;
  }

  @Override
  public void read(ByteBuffer dst, long positionBytes) throws IOException {
    delegate.read(dst, positionBytes);
  }

  @Override
  public void write(ByteBuffer src, long positionBytes) throws IOException {
    delegate.write(src, positionBytes);
  }

  @Override
  public void force() throws IOException {
    delegate.force();
  }

  @Override
  public long sizeBytes() throws IOException {
    return delegate.sizeBytes();
  }

  @Override
  public void resize(long sizeBytes) throws IOException {
    delegate.resize(sizeBytes);
  }

  @Override
  public String description() {
    return delegate.description();
  }

  @Override
  public void close() throws IOException {
    delegate.close();
  }
}
