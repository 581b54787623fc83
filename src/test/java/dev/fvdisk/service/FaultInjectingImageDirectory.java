package dev.fvdisk.service;

import dev.fvdisk.engine.BaseImage;
import dev.fvdisk.engine.Image;
import dev.fvdisk.engine.ImageOptions;
import dev.fvdisk.engine.SpaceBudget;
import dev.fvdisk.engine.io.ForwardingStorage;
import dev.fvdisk.engine.io.MemoryStorage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import org.jspecify.annotations.Nullable;

/**
 * A data directory for tests: images whose names start with {@code faulty} live in memory on
 * storage whose forces fail once {@link #failFlushes()} is called, as after an fsync error, and
 * whose writes fail with ENOSPC's message while {@link #setDiskFull} says so; every other image is
 * an ordinary file.
 */
public class FaultInjectingImageDirectory extends ImageDirectory {

  private volatile boolean failForce;
  private volatile boolean diskFull;

  public FaultInjectingImageDirectory(Path root) {
    super(root);
  }

  /** From now on every force of a faulty image fails, which latches it at its next flush. */
  public void failFlushes() {
    failForce = true;
  }

  /** While full, every write to a faulty image fails as on a full file system. */
  public void setDiskFull(boolean full) {
    diskFull = full;
  }

  @Override
  Image create(
      String name,
      ImageOptions options,
      @Nullable BaseImage base,
      String baseName,
      SpaceBudget spaceBudget)
      throws IOException {
    if (!name.startsWith("faulty")) {
      return super.create(name, options, base, baseName, spaceBudget);
    }
    return Image.create(new FailingStorage(name), options);
  }

  private final class FailingStorage extends ForwardingStorage {

    FailingStorage(String name) {
      super(new MemoryStorage(name));
    }

    @Override
    public void write(ByteBuffer src, long positionBytes) throws IOException {
      if (diskFull) {
        throw new IOException("No space left on device");
      }
      delegate.write(src, positionBytes);
    }

    @Override
    public void force() throws IOException {
      if (failForce) {
        throw new IOException("injected fsync failure");
      }
      delegate.force();
    }
  }
}
