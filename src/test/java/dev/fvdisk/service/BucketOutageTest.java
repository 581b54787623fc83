package dev.fvdisk.service;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.fvdisk.objectstore.BucketStorage;
import dev.fvdisk.objectstore.FlakyObjectStore;
import dev.fvdisk.objectstore.InMemoryObjectStore;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An image in a bucket whose store stops answering: a durable write fails with 503 and latches the
 * image; it stays latched while the store is away, and comes back, without a restart, once the
 * store answers again, with every acknowledged write and none of the failed one.
 */
class BucketOutageTest {

  private static final ServiceLimits LIMITS =
      new ServiceLimits(1L << 40, null, 65536, 0, 4096, 1000, 16);

  @Test
  void an_image_latched_by_a_store_outage_comes_back_when_the_store_does(@TempDir Path dir)
      throws Exception {
    FlakyObjectStore store = new FlakyObjectStore(new InMemoryObjectStore());
    ExecutorService transfers = Executors.newFixedThreadPool(2);
    BucketImageDirectory directory =
        new BucketImageDirectory(
            dir.toRealPath(), store, transfers, BucketStorage.Settings.DEFAULTS);
    byte[] acknowledged = filled(4096, 1);
    byte[] failed = filled(4096, 2);
    byte[] after = filled(4096, 3);
    try (ImageService service = new ImageService(directory, LIMITS)) {
      service.create(new CreateImageCommand("vm", 4L << 20, null, 65536L, null, null, null, null));
      write(service, "vm", 0, acknowledged);

      store.down(true);
      assertThatThrownBy(() -> write(service, "vm", 4096, failed))
          .isInstanceOf(ImageUnavailableException.class);
      assertThat(service.reopenLatchedImages()).as("reopened while the store is away").isZero();
      assertThatThrownBy(() -> write(service, "vm", 8192, after))
          .isInstanceOf(ImageUnavailableException.class);

      store.down(false);
      assertThat(service.reopenLatchedImages()).isEqualTo(1);
      write(service, "vm", 8192, after);
      assertThat(read(service, "vm", 0, 4096)).isEqualTo(acknowledged);
      assertThat(read(service, "vm", 4096, 4096))
          .as("the write whose flush failed was never acknowledged and is gone")
          .isEqualTo(new byte[4096]);
      assertThat(read(service, "vm", 8192, 4096)).isEqualTo(after);
      assertThat(service.reopenLatchedImages()).isZero();
    } finally {
      transfers.shutdownNow();
    }
  }

  /** After a failed fsync only a restart reads what the disk holds, so nothing reopens a file. */
  @Test
  void images_in_files_stay_latched_until_a_restart(@TempDir Path dir) {
    FaultInjectingImageDirectory directory = new FaultInjectingImageDirectory(dir);
    try (ImageService service = new ImageService(directory, LIMITS)) {
      service.create(
          new CreateImageCommand("faulty-vm", 1L << 20, null, 65536L, null, null, null, null));
      directory.failFlushes();
      assertThatThrownBy(() -> write(service, "faulty-vm", 0, filled(512, 1)))
          .isInstanceOf(ImageUnavailableException.class);
      assertThat(service.reopenLatchedImages()).isZero();
      assertThatThrownBy(() -> write(service, "faulty-vm", 0, filled(512, 2)))
          .isInstanceOf(ImageUnavailableException.class)
          .hasMessageContaining("recovers at the next restart");
    }
  }

  private static byte[] filled(int n, int value) {
    byte[] b = new byte[n];
    Arrays.fill(b, (byte) value);
    return b;
  }

  private static void write(ImageService service, String name, long offset, byte[] data) {
    try (VirtualDisk disk = service.attach(name, Access.READ_WRITE)) {
      disk.write(offset, ByteBuffer.wrap(data), Durability.DURABLE);
    }
  }

  private static byte[] read(ImageService service, String name, long offset, int length) {
    ByteBuffer data = ByteBuffer.allocate(length);
    try (VirtualDisk disk = service.attach(name, Access.READ_ONLY)) {
      disk.read(offset, data);
    }
    return data.array();
  }
}
