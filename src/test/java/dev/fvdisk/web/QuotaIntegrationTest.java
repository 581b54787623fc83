package dev.fvdisk.web;

import static org.assertj.core.api.Assertions.assertThat;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.springframework.boot.test.system.CapturedOutput;
import org.springframework.boot.test.system.OutputCaptureExtension;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

/**
 * The storage quota and the image-count limit: both answer 507 before anything is written or
 * created, and a refused write succeeds once space is freed. Copies from a base (prefetching and
 * copy-on-read) stay under the quota too: prefetching pauses with its reason shown and goes on once
 * space returns.
 */
@ExtendWith(OutputCaptureExtension.class)
class QuotaIntegrationTest extends ApiTestSupport {

  private static final long CHUNK = 65536;
  private static final int MAX_IMAGES = 4;

  @DynamicPropertySource
  static void limits(DynamicPropertyRegistry registry) {
    Path dir;
    try {
      dir =
          Files.createTempDirectory(
              Files.createDirectories(Path.of("target", "it-data")), "quota-");
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    registry.add("fvdisk.test.data-dir", dir::toString);
    registry.add("fvdisk.storage-quota", () -> (3 * CHUNK) + "B");
    registry.add("fvdisk.max-images", () -> String.valueOf(MAX_IMAGES));
    registry.add("fvdisk.min-free-space", () -> "0B");
  }

  @Test
  void a_write_over_the_quota_is_507_changes_nothing_and_succeeds_after_space_is_freed() {
    String first = createImage("quota-a", MIB, CHUNK);
    String second = createImage("quota-b", MIB, CHUNK);
    try {
      write(first, 0, pattern((int) (2 * CHUNK), 1));
      write(second, 0, pattern((int) CHUNK, 2));
      String before = checksum(second);

      // Spans chunk 0 (stored) and chunk 1 (new); the quota has no chunk left.
      api()
          .contentType("application/octet-stream")
          .header("Content-Range", contentRange(CHUNK - 100, 200))
          .body(pattern(200, 3))
          .put(IMAGES + "/" + second + "/data")
          .then()
          .statusCode(507)
          .body("type", equalTo("https://fvdisk.dev/problems/insufficient-storage"))
          .body("neededBytes", equalTo((int) CHUNK))
          .body("availableBytes", equalTo(0));
      assertThat(checksum(second)).isEqualTo(before);
      api()
          .post(IMAGES + "/" + second + "/check")
          .then()
          .statusCode(200)
          .body("status", equalTo("ok"));

      api().delete(IMAGES + "/" + first).then().statusCode(204);
      first = null;
      write(second, CHUNK - 100, pattern(200, 3));
      assertThat(read(second, CHUNK - 100, 200)).isEqualTo(pattern(200, 3));
    } finally {
      if (first != null) {
        api().delete(IMAGES + "/" + first);
      }
      api().delete(IMAGES + "/" + second);
    }
  }

  @Test
  void creating_more_images_than_the_limit_is_507_and_creates_nothing() {
    List<String> created = new ArrayList<>();
    try {
      int existing = api().get(IMAGES).then().extract().path("images.size()");
      for (int i = existing; i < MAX_IMAGES; i++) {
        created.add(createImage("count", MIB));
      }
      String refused = uniqueName("count");
      api()
          .contentType("application/json")
          .body(Map.of("name", refused, "sizeBytes", MIB))
          .post(IMAGES)
          .then()
          .statusCode(507)
          .body("type", equalTo("https://fvdisk.dev/problems/insufficient-storage"))
          .body("imageCount", equalTo(MAX_IMAGES))
          .body("maxImages", equalTo(MAX_IMAGES));
      api().get(IMAGES + "/" + refused).then().statusCode(404);
      int after = api().get(IMAGES).then().extract().path("images.size()");
      assertThat(after).isEqualTo(MAX_IMAGES);
    } finally {
      created.forEach(name -> api().delete(IMAGES + "/" + name));
    }
  }

  @Test
  void prefetch_and_copy_on_read_stay_under_the_quota_and_prefetch_resumes_when_space_returns(
      CapturedOutput output) throws InterruptedException {
    // One chunk of data in a base of 16 chunks, and a filler that takes the rest of the quota.
    String golden = createImage("quota-golden", 16 * CHUNK, CHUNK);
    String filler = createImage("quota-filler", MIB, CHUNK);
    String prefetching = uniqueName("quota-prefetch");
    String copying = uniqueName("quota-cor");
    byte[] data = pattern((int) CHUNK, 5);
    try {
      write(golden, 5 * CHUNK, data);
      api()
          .contentType("application/json")
          .body(Map.of("readOnly", true))
          .patch(IMAGES + "/" + golden)
          .then()
          .statusCode(200);
      write(filler, 0, pattern((int) (2 * CHUNK), 6));
      createClone(prefetching, golden, Map.of("prefetch", Map.of("enabled", true)));
      createClone(copying, golden, Map.of("copyOnRead", true));

      awaitPrefetch(prefetching, "paused");
      api()
          .get(IMAGES + "/" + prefetching)
          .then()
          .body("prefetch.reason", containsString("waiting for space: the storage quota"))
          .body("storage.usedBytes", equalTo(0));
      assertThat(waitingForSpaceMeter()).isEqualTo(1.0);
      // The file names the image by its file name; a bucket names it by name and prefix.
      assertThat(output.getOut())
          .containsPattern(prefetching + "(\\.fvd| \\(bucket:[^)]*\\)): prefetching paused");
      // Copy-on-read serves the base's bytes without storing them.
      assertThat(read(copying, 0, (int) (16 * CHUNK))).isEqualTo(expectedGolden(data));
      api().get(IMAGES + "/" + copying).then().body("storage.usedBytes", equalTo(0));
      assertThat(storageUsed()).isLessThanOrEqualTo(3 * CHUNK);

      api().delete(IMAGES + "/" + filler).then().statusCode(204);
      filler = null;
      awaitPrefetch(prefetching, "done");
      api()
          .get(IMAGES + "/" + prefetching)
          .then()
          .body("storage.usedBytes", equalTo((int) CHUNK))
          .body("prefetch.reason", equalTo(null));
      assertThat(waitingForSpaceMeter()).isEqualTo(0.0);
      assertThat(output.getOut())
          .containsPattern(prefetching + "(\\.fvd| \\(bucket:[^)]*\\)): prefetching resumed");
      assertThat(read(prefetching, 0, (int) (16 * CHUNK))).isEqualTo(expectedGolden(data));
      assertThat(storageUsed()).isLessThanOrEqualTo(3 * CHUNK);
    } finally {
      api().delete(IMAGES + "/" + prefetching);
      api().delete(IMAGES + "/" + copying);
      if (filler != null) {
        api().delete(IMAGES + "/" + filler);
      }
      api().delete(IMAGES + "/" + golden);
    }
  }

  private static byte[] expectedGolden(byte[] data) {
    byte[] expected = new byte[(int) (16 * CHUNK)];
    System.arraycopy(data, 0, expected, (int) (5 * CHUNK), data.length);
    return expected;
  }

  private void createClone(String name, String base, Map<String, Object> settings) {
    Map<String, Object> body = new java.util.HashMap<>(settings);
    body.put("name", name);
    body.put("base", base);
    body.put("chunkSizeBytes", CHUNK);
    api().contentType("application/json").body(body).post(IMAGES).then().statusCode(201);
  }

  private void awaitPrefetch(String name, String state) throws InterruptedException {
    long deadline = System.nanoTime() + 30_000_000_000L;
    String now = null;
    while (System.nanoTime() < deadline) {
      now = api().get(IMAGES + "/" + name).then().extract().path("prefetch.state");
      if (state.equals(now)) {
        return;
      }
      Thread.sleep(20);
    }
    assertThat(now)
        .as("prefetch state of %s: %s", name, api().get(IMAGES + "/" + name).asString())
        .isEqualTo(state);
  }

  private double waitingForSpaceMeter() {
    Number value =
        raw()
            .get("/actuator/metrics/fvdisk.prefetch.waiting.for.space")
            .then()
            .statusCode(200)
            .extract()
            .path("measurements[0].value");
    return value.doubleValue();
  }

  private long storageUsed() {
    Number used = raw().get("/actuator/storage").then().statusCode(200).extract().path("usedBytes");
    return used.longValue();
  }
}
