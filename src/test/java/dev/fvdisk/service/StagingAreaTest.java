package dev.fvdisk.service;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The staging area: files made on demand under {@code .staging}, read back as written, deleted on
 * close and at start-up, refused when they would eat into the free space writes leave alone, and
 * never taken for images.
 */
class StagingAreaTest {

  private static final ServiceLimits LIMITS =
      new ServiceLimits(1L << 40, null, 65536, 0, 4096, 1000, 16);

  @Test
  void a_staged_body_reads_back_as_written_and_its_file_goes_on_close(@TempDir Path dir) {
    Path staging = dir.resolve(".staging");
    byte[] body = new byte[10_000];
    for (int i = 0; i < body.length; i++) {
      body[i] = (byte) (i * 13 + 5);
    }
    try (ImageService service = new ImageService(new ImageDirectory(dir), LIMITS)) {
      assertThat(staging).doesNotExist();
      try (StagingFile file = service.staging().create(body.length)) {
        file.append(ByteBuffer.wrap(body, 0, 6000));
        file.append(ByteBuffer.wrap(body, 6000, 4000));
        assertThat(filesIn(staging)).hasSize(1);
        ByteBuffer back = ByteBuffer.allocate(5000);
        file.read(3000, back);
        assertThat(back.position()).isEqualTo(5000);
        assertThat(back.array()).isEqualTo(Arrays.copyOfRange(body, 3000, 8000));
        assertThatThrownBy(() -> file.read(9000, ByteBuffer.allocate(2000)))
            .isInstanceOf(StorageIoException.class)
            .hasMessageContaining("staging file");
      }
      assertThat(filesIn(staging)).isEmpty();
    }
  }

  @Test
  void start_up_deletes_what_an_earlier_run_left(@TempDir Path dir) throws IOException {
    Path staging = Files.createDirectories(dir.resolve(".staging"));
    Files.write(staging.resolve("body-1.part"), new byte[100]);
    Files.write(staging.resolve("body-2.part"), new byte[0]);
    try (ImageService service = new ImageService(new ImageDirectory(dir), LIMITS)) {
      service.openAll();
      assertThat(filesIn(staging)).isEmpty();
      assertThat(service.failedImages()).isEmpty();
    }
  }

  @Test
  void a_body_that_would_take_the_kept_free_space_is_refused_before_any_file(@TempDir Path dir) {
    ServiceLimits keepsAll =
        new ServiceLimits(1L << 40, null, 65536, Long.MAX_VALUE / 2, 4096, 1000, 16);
    try (ImageService service = new ImageService(new ImageDirectory(dir), keepsAll)) {
      assertThatThrownBy(() -> service.staging().create(1 << 20))
          .isInstanceOf(InsufficientStorageException.class)
          .hasMessageContaining("the body of 1048576 bytes is staged")
          .hasMessageContaining("nothing was written");
      assertThat(dir.resolve(".staging")).doesNotExist();
    }
  }

  @Test
  void the_storage_quota_does_not_count_staged_bodies(@TempDir Path dir) {
    ServiceLimits noQuotaLeft =
        new ServiceLimits(1L << 40, null, 65536, 0, 4096, 1000, 16, 100, 0L);
    try (ImageService service = new ImageService(new ImageDirectory(dir), noQuotaLeft);
        StagingFile file = service.staging().create(1 << 20)) {
      file.append(ByteBuffer.allocate(1 << 20));
    }
  }

  @Test
  void the_staging_directory_is_never_listed_as_an_image(@TempDir Path dir) throws IOException {
    ImageDirectory directory = new ImageDirectory(dir);
    try (ImageService service = new ImageService(directory, LIMITS)) {
      service.create(new CreateImageCommand("vm", 1L << 20, null, null, null, null, null, null));
      try (StagingFile file = service.staging().create(512)) {
        file.append(ByteBuffer.allocate(512));
        // Even a file named like an image is not one when it sits in the staging area.
        Files.write(directory.stagingDirectory().resolve("ghost.fvd"), new byte[512]);
        assertThat(directory.names()).containsExactly("vm");
        assertThat(service.list()).extracting(ImageDescriptor::name).containsExactly("vm");
      }
    }
  }

  private static List<Path> filesIn(Path directory) {
    try (Stream<Path> files = Files.list(directory)) {
      return files.toList();
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }
}
