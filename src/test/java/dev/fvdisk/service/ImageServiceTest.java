package dev.fvdisk.service;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.fvdisk.engine.Image;
import dev.fvdisk.engine.ImageOptions;
import dev.fvdisk.engine.io.MemoryStorage;
import dev.fvdisk.engine.io.Storage;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Service behaviour that needs a failing disk, which HTTP tests cannot arrange. */
class ImageServiceTest {

  private static final ServiceLimits LIMITS =
      new ServiceLimits(1L << 40, null, 65536, 0, 4096, 1000, 16);

  /** Storage whose forces fail once told to, as after an fsync error. */
  private static final class FailingStorage implements Storage {
    private final MemoryStorage delegate = new MemoryStorage("failing");
    volatile boolean failForce;
    volatile boolean diskFull;

    @Override
    public void read(ByteBuffer dst, long positionBytes) throws IOException {
      delegate.read(dst, positionBytes);
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
    public void close() {
      delegate.close();
    }
  }

  @Test
  void failed_flush_latches_the_image_as_unavailable_while_reads_go_on(@TempDir Path dir)
      throws Exception {
    FailingStorage storage = new FailingStorage();
    ImageDirectory directory =
        new ImageDirectory(dir) {
          @Override
          Image create(String name, ImageOptions options, Image base, String baseName)
              throws IOException {
            return Image.create(storage, options);
          }
        };
    try (ImageService service = new ImageService(directory, LIMITS)) {
      service.create(new CreateImageCommand("vm", 1L << 20, null, 65536L, null, null, null, null));
      service.write("vm", 0, 4, new ByteArrayInputStream(new byte[] {1, 2, 3, 4}), true, null);
      storage.failForce = true;
      assertThatThrownBy(
              () ->
                  service.write("vm", 512, 1, new ByteArrayInputStream(new byte[] {5}), true, null))
          .isInstanceOf(ImageUnavailableException.class)
          .hasMessageContaining("\"vm\"");
      assertThatThrownBy(() -> service.flush("vm", null))
          .isInstanceOf(ImageUnavailableException.class);
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      service.read("vm", 0, 4, out);
      assertThat(out.toByteArray()).containsExactly(1, 2, 3, 4);
    }
  }

  @Test
  void a_full_disk_answers_insufficient_storage_and_leaves_the_image_consistent(@TempDir Path dir)
      throws Exception {
    FailingStorage storage = new FailingStorage();
    ImageDirectory directory =
        new ImageDirectory(dir) {
          @Override
          Image create(String name, ImageOptions options, Image base, String baseName)
              throws IOException {
            return Image.create(storage, options);
          }
        };
    try (ImageService service = new ImageService(directory, LIMITS)) {
      service.create(new CreateImageCommand("vm", 4L << 20, null, 65536L, null, null, null, null));
      service.write("vm", 0, 4, new ByteArrayInputStream(new byte[] {1, 2, 3, 4}), true, null);
      storage.diskFull = true;
      assertThatThrownBy(
              () ->
                  service.write(
                      "vm", 1 << 20, 8192, new ByteArrayInputStream(new byte[8192]), true, null))
          .isInstanceOf(InsufficientStorageException.class)
          .hasMessageContaining("No space left on device");
      storage.diskFull = false;
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      service.read("vm", 0, 4, out);
      assertThat(out.toByteArray()).containsExactly(1, 2, 3, 4);
      assertThat(service.check("vm", false).status()).isNotEqualTo("corrupt");
      // Space came back: the image takes writes again.
      service.write("vm", 1 << 20, 1, new ByteArrayInputStream(new byte[] {9}), true, null);
    }
  }

  @Test
  void a_clone_chain_longer_than_the_limit_is_refused(@TempDir Path dir) {
    ServiceLimits twoDeep = new ServiceLimits(1L << 40, null, 65536, 0, 4096, 1000, 2);
    try (ImageService service = new ImageService(new ImageDirectory(dir), twoDeep)) {
      service.create(
          new CreateImageCommand("golden", 1L << 20, null, null, null, null, null, null));
      service.update("golden", new ImageChanges(null, true, null, null, null), null);
      service.create(new CreateImageCommand("mid", null, "golden", null, null, null, null, null));
      service.update("mid", new ImageChanges(null, true, null, null, null), null);
      assertThatThrownBy(
              () ->
                  service.create(
                      new CreateImageCommand("top", null, "mid", null, null, null, null, null)))
          .isInstanceOf(InvalidValueException.class)
          .hasMessageContaining("chain of 3 images");
      assertThat(dir.resolve("top.fvd")).doesNotExist();
    }
  }

  @Test
  void names_are_checked_before_any_file_is_touched(@TempDir Path dir) {
    try (ImageService service = new ImageService(new ImageDirectory(dir), LIMITS)) {
      for (String bad : new String[] {"", ".", "..", "../x", "a/b", "A", "-a", "a".repeat(64)}) {
        assertThatThrownBy(
                () ->
                    service.create(
                        new CreateImageCommand(bad, 512L, null, null, null, null, null, null)))
            .isInstanceOf(InvalidRequestException.class);
        assertThatThrownBy(() -> service.describe(bad)).isInstanceOf(ImageNotFoundException.class);
      }
      assertThat(dir.toFile().list()).isEmpty();
    }
  }
}
