package dev.fvdisk.service;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The block-device port: what attaching pins, how delete and the read-only mark treat readers and
 * writers, range and access checks, conditional changes, and what monitoring is told.
 */
class VirtualDiskTest {

  private static final ServiceLimits LIMITS =
      new ServiceLimits(1L << 40, null, 65536, 0, 4096, 1000, 16);
  private static final long SIZE_BYTES = 1 << 20;
  private static final int CHUNK_BYTES = 65536;

  @TempDir Path dir;
  private final List<String> observed = new ArrayList<>();
  private ImageService service;

  @BeforeEach
  void createImage() {
    ImageServiceObserver observer =
        new ImageServiceObserver() {
          @Override
          public synchronized void read(long bytes, long nanos) {
            observed.add("read " + bytes);
          }

          @Override
          public synchronized void written(long bytes, long nanos) {
            observed.add("written " + bytes);
          }
        };
    // A short wait for attached writers keeps the refusals quick to test.
    service = new ImageService(new ImageDirectory(dir), LIMITS, observer, Duration.ofMillis(200));
    service.create(
        new CreateImageCommand("vm", SIZE_BYTES, null, (long) CHUNK_BYTES, null, null, null, null));
  }

  @AfterEach
  void closeService() {
    service.close();
  }

  @Test
  void a_writer_that_stays_attached_makes_delete_refuse_and_the_image_stays() {
    try (VirtualDisk writer = service.attach("vm", Access.READ_WRITE)) {
      assertThatThrownBy(() -> service.delete("vm", null))
          .isInstanceOf(ImageAttachedException.class)
          .hasMessageContaining("\"vm\" has 1 attachment(s) that stayed");
      writer.write(0, ByteBuffer.wrap(new byte[] {7}), Durability.DURABLE);
    }
    assertThat(read("vm", 0, 1)).containsExactly(7);
    service.delete("vm", null);
    assertThatThrownBy(() -> service.describe("vm")).isInstanceOf(ImageNotFoundException.class);
  }

  @Test
  void a_delete_waits_for_a_writer_that_detaches_in_time(@TempDir Path other) throws Exception {
    Path patientDir = Files.createDirectories(other.resolve("patient"));
    try (ImageService patient = new ImageService(new ImageDirectory(patientDir), LIMITS)) {
      patient.create(new CreateImageCommand("vm", SIZE_BYTES, null, null, null, null, null, null));
      VirtualDisk writer = patient.attach("vm", Access.READ_WRITE);
      CompletableFuture<Void> detach =
          CompletableFuture.runAsync(
              () -> {
                sleep(100);
                writer.write(0, ByteBuffer.wrap(new byte[] {1}), Durability.DURABLE);
                writer.close();
              });
      patient.delete("vm", null);
      detach.get(10, TimeUnit.SECONDS);
      assertThatThrownBy(() -> patient.attach("vm", Access.READ_WRITE))
          .isInstanceOf(ImageNotFoundException.class);
    }
  }

  @Test
  void a_reader_never_holds_up_a_delete_and_finds_the_image_gone_after_it() {
    VirtualDisk reader = service.attach("vm", Access.READ_ONLY);
    reader.read(0, ByteBuffer.allocate(512));
    service.delete("vm", null);
    assertThatThrownBy(() -> reader.read(0, ByteBuffer.allocate(512)))
        .isInstanceOf(ImageNotFoundException.class);
    assertThatThrownBy(reader::version).isInstanceOf(ImageNotFoundException.class);
    // A new image of the same name is not reachable through the old attachment.
    service.create(new CreateImageCommand("vm", SIZE_BYTES, null, null, null, null, null, null));
    assertThatThrownBy(() -> reader.read(0, ByteBuffer.allocate(512)))
        .isInstanceOf(ImageNotFoundException.class);
    reader.close();
    reader.close();
  }

  @Test
  void marking_read_only_waits_for_writers_and_readers_read_on_through_the_reopening() {
    write("vm", 4096, new byte[] {1, 2, 3});
    try (VirtualDisk reader = service.attach("vm", Access.READ_ONLY)) {
      VirtualDisk writer = service.attach("vm", Access.READ_WRITE);
      ImageChanges markReadOnly = new ImageChanges(null, true, null, null, null);
      assertThatThrownBy(() -> service.update("vm", markReadOnly, null))
          .isInstanceOf(ImageAttachedException.class)
          .hasMessageContaining("not made read-only");
      assertThat(reader.readOnly()).isFalse();
      writer.close();
      assertThat(service.update("vm", markReadOnly, null).readOnly()).isTrue();

      assertThat(reader.readOnly()).isTrue();
      ByteBuffer data = ByteBuffer.allocate(3);
      reader.read(4096, data);
      assertThat(data.array()).containsExactly(1, 2, 3);
    }
    try (VirtualDisk writer = service.attach("vm", Access.READ_WRITE)) {
      assertThatThrownBy(() -> writer.write(0, ByteBuffer.allocate(1), Durability.BUFFERED))
          .isInstanceOf(ImageReadOnlyException.class);
      assertThatThrownBy(() -> writer.checkWrite(0, 1)).isInstanceOf(ImageReadOnlyException.class);
      writer.flush();
    }
  }

  @Test
  void ranges_outside_the_disk_are_refused_with_the_disk_size() {
    try (VirtualDisk disk = service.attach("vm", Access.READ_WRITE)) {
      assertThatThrownBy(() -> disk.read(SIZE_BYTES - 1, ByteBuffer.allocate(2)))
          .isInstanceOf(RangeOutsideDiskException.class)
          .extracting(e -> ((RangeOutsideDiskException) e).sizeBytes())
          .isEqualTo(SIZE_BYTES);
      assertThatThrownBy(() -> disk.write(-1, ByteBuffer.allocate(1), Durability.BUFFERED))
          .isInstanceOf(RangeOutsideDiskException.class);
      assertThatThrownBy(() -> disk.zero(SIZE_BYTES, 512, Durability.BUFFERED))
          .isInstanceOf(RangeOutsideDiskException.class);
      assertThatThrownBy(() -> disk.extents(0, SIZE_BYTES + 1, 10))
          .isInstanceOf(RangeOutsideDiskException.class);
      assertThatThrownBy(() -> disk.checkWrite(SIZE_BYTES - 10, 11))
          .isInstanceOf(RangeOutsideDiskException.class);
    }
  }

  @Test
  void misuse_of_an_attachment_is_a_bug_of_the_caller() {
    VirtualDisk reader = service.attach("vm", Access.READ_ONLY);
    assertThatThrownBy(() -> reader.write(0, ByteBuffer.allocate(1), Durability.DURABLE))
        .isInstanceOf(IllegalStateException.class);
    assertThatThrownBy(() -> reader.zero(0, 512, Durability.DURABLE))
        .isInstanceOf(IllegalStateException.class);
    reader.close();
    assertThatThrownBy(() -> reader.read(0, ByteBuffer.allocate(1)))
        .isInstanceOf(IllegalStateException.class);
  }

  @Test
  void a_conditional_change_checks_the_version_and_keeps_other_calls_out_until_it_closes()
      throws Exception {
    VirtualDisk disk = service.attach("vm", Access.READ_WRITE);
    String version = disk.version();
    assertThatThrownBy(() -> disk.holdExclusively(ExpectedVersion.oneOf(List.of("other"))))
        .isInstanceOf(VersionMismatchException.class)
        .extracting(e -> ((VersionMismatchException) e).currentVersion())
        .isEqualTo(version);
    disk.close();

    VirtualDisk holder = service.attach("vm", Access.READ_WRITE);
    holder.holdExclusively(ExpectedVersion.oneOf(List.of(version)));
    CompletableFuture<byte[]> reading = CompletableFuture.supplyAsync(() -> read("vm", 0, 1));
    // Not a timing claim: the read cannot finish while the hold lasts.
    Thread.sleep(100);
    assertThat(reading).isNotDone();
    holder.write(0, ByteBuffer.wrap(new byte[] {9}), Durability.DURABLE);
    assertThat(holder.version()).isNotEqualTo(version);
    holder.close();
    assertThat(reading.get(10, TimeUnit.SECONDS)).containsExactly(9);
  }

  @Test
  void extents_say_where_the_bytes_come_from() {
    write("vm", CHUNK_BYTES, new byte[] {1});
    try (VirtualDisk disk = service.attach("vm", Access.READ_ONLY)) {
      assertThat(disk.extents(0, 3L * CHUNK_BYTES, 10))
          .containsExactly(
              new DiskExtent(0, CHUNK_BYTES, DiskExtent.State.ZERO),
              new DiskExtent(CHUNK_BYTES, CHUNK_BYTES, DiskExtent.State.DATA),
              new DiskExtent(2L * CHUNK_BYTES, CHUNK_BYTES, DiskExtent.State.ZERO));
      assertThat(disk.extents(0, 3L * CHUNK_BYTES, 1)).hasSize(1);
    }
  }

  @Test
  void monitoring_hears_of_one_read_and_one_write_per_attachment() {
    try (VirtualDisk disk = service.attach("vm", Access.READ_WRITE)) {
      disk.checkWrite(0, 8192);
      disk.write(0, ByteBuffer.allocate(4096), Durability.BUFFERED);
      disk.write(4096, ByteBuffer.allocate(4096), Durability.BUFFERED);
      disk.read(0, ByteBuffer.allocate(1000));
      disk.read(1000, ByteBuffer.allocate(24));
    }
    try (VirtualDisk disk = service.attach("vm", Access.READ_ONLY)) {
      disk.flush();
    }
    assertThat(observed).containsExactly("read 1024", "written 8192");
  }

  private void write(String name, long offset, byte[] data) {
    try (VirtualDisk disk = service.attach(name, Access.READ_WRITE)) {
      disk.write(offset, ByteBuffer.wrap(data), Durability.DURABLE);
    }
  }

  private byte[] read(String name, long offset, int length) {
    ByteBuffer data = ByteBuffer.allocate(length);
    try (VirtualDisk disk = service.attach(name, Access.READ_ONLY)) {
      disk.read(offset, data);
    }
    return data.array();
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
