package dev.fvdisk.web;

import static org.assertj.core.api.Assertions.assertThat;
import static org.hamcrest.Matchers.equalTo;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

/**
 * The storage quota and the image-count limit: both answer 507 before anything is written or
 * created, and a refused write succeeds once space is freed.
 */
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
}
