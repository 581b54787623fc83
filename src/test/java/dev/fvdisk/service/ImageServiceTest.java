package dev.fvdisk.service;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Service behaviour that needs a failing disk, which HTTP tests cannot arrange. */
class ImageServiceTest {

  private static final ServiceLimits LIMITS =
      new ServiceLimits(1L << 40, null, 65536, 0, 4096, 1000, 16);

  @Test
  void failed_flush_latches_the_image_as_unavailable_while_reads_go_on(@TempDir Path dir)
      throws Exception {
    FaultInjectingImageDirectory directory = new FaultInjectingImageDirectory(dir);
    try (ImageService service = new ImageService(directory, LIMITS)) {
      service.create(
          new CreateImageCommand("faulty-vm", 1L << 20, null, 65536L, null, null, null, null));
      write(service, "faulty-vm", 0, new byte[] {1, 2, 3, 4});
      directory.failFlushes();
      assertThatThrownBy(() -> write(service, "faulty-vm", 512, new byte[] {5}))
          .isInstanceOf(ImageUnavailableException.class)
          .hasMessageContaining("\"faulty-vm\"");
      assertThatThrownBy(() -> service.flush("faulty-vm", null))
          .isInstanceOf(ImageUnavailableException.class);
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      read(service, "faulty-vm", 0, 4, Channels.newChannel(out));
      assertThat(out.toByteArray()).containsExactly(1, 2, 3, 4);
    }
  }

  @Test
  void a_full_disk_answers_insufficient_storage_and_leaves_the_image_consistent(@TempDir Path dir)
      throws Exception {
    FaultInjectingImageDirectory directory = new FaultInjectingImageDirectory(dir);
    try (ImageService service = new ImageService(directory, LIMITS)) {
      service.create(
          new CreateImageCommand("faulty-vm", 4L << 20, null, 65536L, null, null, null, null));
      write(service, "faulty-vm", 0, new byte[] {1, 2, 3, 4});
      directory.setDiskFull(true);
      assertThatThrownBy(() -> write(service, "faulty-vm", 1 << 20, new byte[8192]))
          .isInstanceOf(InsufficientStorageException.class)
          .hasMessageContaining("No space left on device");
      directory.setDiskFull(false);
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      read(service, "faulty-vm", 0, 4, Channels.newChannel(out));
      assertThat(out.toByteArray()).containsExactly(1, 2, 3, 4);
      assertThat(service.check("faulty-vm", false).status()).isNotEqualTo("corrupt");
      // Space came back: the image takes writes again.
      write(service, "faulty-vm", 1 << 20, new byte[] {9});
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

  /** A durable write through an attachment, as a data PUT makes it. */
  @Test
  void a_clone_of_a_snapshot_reopens_through_it_after_a_restart(@TempDir Path dir)
      throws Exception {
    byte[] first = {1, 2, 3, 4};
    try (ImageService service = new ImageService(new ImageDirectory(dir), LIMITS)) {
      service.create(
          new CreateImageCommand("golden", 1L << 20, null, 65536L, null, null, null, null));
      write(service, "golden", 0, first);
      service.createSnapshot("golden", "s1");
      write(service, "golden", 0, new byte[] {9, 9, 9, 9});
      // "a-clone" sorts before "golden": at start-up it opens first and opens its base with it.
      service.create(
          new CreateImageCommand("a-clone", null, "golden@s1", null, null, null, null, null));
      assertThat(service.describe("a-clone").base()).isEqualTo("golden@s1");
    }
    try (ImageService service = new ImageService(new ImageDirectory(dir), LIMITS)) {
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      read(service, "a-clone", 0, 4, Channels.newChannel(out));
      assertThat(out.toByteArray()).containsExactly(first);
      assertThatThrownBy(() -> service.deleteSnapshot("golden", "s1"))
          .isInstanceOf(SnapshotInUseException.class)
          .hasMessageContaining("a-clone");
      assertThatThrownBy(() -> service.delete("golden", null))
          .isInstanceOf(ImageInUseException.class);
      // The golden image may be marked read-only and writable again; the clone reads on.
      service.update("golden", new ImageChanges(null, true, null, null, null), null);
      service.update("golden", new ImageChanges(null, false, null, null, null), null);
      out.reset();
      read(service, "a-clone", 0, 4, Channels.newChannel(out));
      assertThat(out.toByteArray()).containsExactly(first);
      service.delete("a-clone", null);
      service.deleteSnapshot("golden", "s1");
    }
  }

  private static void write(ImageService service, String name, long offset, byte[] data) {
    try (VirtualDisk disk = service.attach(name, Access.READ_WRITE)) {
      disk.write(offset, ByteBuffer.wrap(data), Durability.DURABLE);
    }
  }

  /** Reads through an attachment into {@code out}. */
  private static void read(
      ImageService service, String name, long offset, int length, WritableByteChannel out)
      throws IOException {
    ByteBuffer data = ByteBuffer.allocate(length);
    try (VirtualDisk disk = service.attach(name, Access.READ_ONLY)) {
      disk.read(offset, data);
    }
    out.write(data.flip());
  }
}
