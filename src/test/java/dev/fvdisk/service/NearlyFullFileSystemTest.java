package dev.fvdisk.service;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Copies from a base on a small real file system: prefetching and copy-on-read never take the free
 * space below {@code fvdisk.min-free-space} (give or take the one chunk a copy may overshoot by),
 * prefetching pauses with the reason in its status, and goes on once space returns.
 *
 * <p>Needs a small file system of its own, such as a 40 MiB tmpfs, named by the environment
 * variable {@code FVDISK_SMALL_FS_DIR}; {@code .ci/run} mounts one. Without it the test is skipped,
 * unless {@code FVDISK_REQUIRE_SMALL_FS} is set.
 */
class NearlyFullFileSystemTest {

  private static final long MIB = 1 << 20;
  private static final long CHUNK = 64 << 10;
  private static final long MIN_FREE = 8 * MIB;
  private static final long BASE_DATA = 8 * MIB;
  private static final long FILLER_DATA = 20 * MIB;

  private Path dir;

  @BeforeEach
  void smallFileSystem() throws IOException {
    String root = System.getenv("FVDISK_SMALL_FS_DIR");
    if (System.getenv("FVDISK_REQUIRE_SMALL_FS") == null) {
      assumeTrue(root != null, "FVDISK_SMALL_FS_DIR names no small file system");
    }
    assertThat(root).as("FVDISK_SMALL_FS_DIR").isNotNull();
    dir = Files.createTempDirectory(Path.of(root), "nearly-full-");
    long total = Files.getFileStore(dir).getTotalSpace();
    assertThat(total).as("size of the small file system").isBetween(36 * MIB, 48 * MIB);
  }

  @AfterEach
  void cleanUp() throws IOException {
    if (dir != null) {
      try (var files = Files.list(dir)) {
        for (Path f : files.toList()) {
          Files.delete(f);
        }
      }
      Files.delete(dir);
    }
  }

  @Test
  void copies_from_the_base_stop_at_the_free_space_threshold_and_go_on_when_space_returns()
      throws Exception {
    ServiceLimits limits =
        new ServiceLimits(1L << 40, null, 65536, MIN_FREE, 65536, 1000, 16, 100, null);
    ImageDirectory directory = new ImageDirectory(dir);
    try (ImageService service = new ImageService(directory, limits)) {
      byte[] baseData = random(BASE_DATA, 1);
      service.create(image("golden", BASE_DATA, null, null, null));
      write(service, "golden", baseData);
      service.update("golden", new ImageChanges(null, true, null, null, null), null);
      service.create(image("filler", FILLER_DATA, null, null, null));
      write(service, "filler", random(FILLER_DATA, 2));
      long allowed = directory.usableBytes() - MIN_FREE;
      assertThat(allowed).as("room above the threshold").isBetween(MIB, BASE_DATA / 2);

      service.create(image("cor", null, "golden", true, null));
      assertThat(read(service, "cor", BASE_DATA)).isEqualTo(baseData);
      service.create(image("prefetching", null, "golden", null, true));
      awaitUntil(
          () ->
              service.describe("prefetching").prefetch().reason() != null
                  && service
                      .describe("prefetching")
                      .prefetch()
                      .reason()
                      .startsWith("waiting for space"),
          service);

      ImageDescriptor.Prefetch paused = service.describe("prefetching").prefetch();
      assertThat(paused.state()).isEqualTo("paused");
      assertThat(paused.reason()).contains("file system");
      assertThat(directory.usableBytes()).isGreaterThanOrEqualTo(MIN_FREE - CHUNK);
      long copied =
          service.describe("cor").usedBytes() + service.describe("prefetching").usedBytes();
      assertThat(copied).isLessThanOrEqualTo(allowed + 2 * CHUNK);
      assertThat(service.storageSnapshot().images())
          .filteredOn(ImageUsage::prefetchWaitingForSpace)
          .extracting(ImageUsage::name)
          .containsExactly("prefetching");
      // Still paused a while later, and still above the threshold.
      TimeUnit.MILLISECONDS.sleep(1500);
      assertThat(directory.usableBytes()).isGreaterThanOrEqualTo(MIN_FREE - CHUNK);

      service.delete("filler", null);
      awaitUntil(() -> service.describe("prefetching").prefetch().state().equals("done"), service);
      assertThat(service.describe("prefetching").prefetch().reason()).isNull();
      assertThat(read(service, "prefetching", BASE_DATA)).isEqualTo(baseData);
      assertThat(directory.usableBytes()).isGreaterThanOrEqualTo(MIN_FREE - CHUNK);
      service.delete("prefetching", null);
      service.delete("cor", null);
    }
  }

  private static CreateImageCommand image(
      String name, Long sizeBytes, String base, Boolean copyOnRead, Boolean prefetch) {
    return new CreateImageCommand(name, sizeBytes, base, CHUNK, null, copyOnRead, prefetch, 0L);
  }

  private static byte[] random(long length, int seed) {
    byte[] data = new byte[(int) length];
    new Random(seed).nextBytes(data);
    return data;
  }

  private static void write(ImageService service, String name, byte[] data) throws IOException {
    try (VirtualDisk disk = service.attach(name, Access.READ_WRITE)) {
      disk.write(0, ByteBuffer.wrap(data), Durability.DURABLE);
    }
  }

  private static byte[] read(ImageService service, String name, long length) throws IOException {
    ByteBuffer all = ByteBuffer.allocate((int) length);
    try (VirtualDisk disk = service.attach(name, Access.READ_ONLY)) {
      disk.read(0, all);
    }
    return all.array();
  }

  private static void awaitUntil(BooleanSupplier condition, ImageService service)
      throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (!condition.getAsBoolean() && System.nanoTime() < deadline) {
      TimeUnit.MILLISECONDS.sleep(20);
    }
    assertThat(condition.getAsBoolean())
        .as("condition within a minute; images: %s", service.list())
        .isTrue();
  }
}
