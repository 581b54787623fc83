package dev.fvdisk.web;

import static io.restassured.RestAssured.given;
import static org.assertj.core.api.Assertions.assertThat;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.greaterThanOrEqualTo;
import static org.hamcrest.Matchers.not;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.DisabledIfEnvironmentVariable;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

/**
 * A server with tight limits and a damaged image file in its data directory: 507 before any byte is
 * written, 413 for bodies over the limits, 500 image-corrupt for a file that cannot be opened.
 */
class LimitsIntegrationTest extends ApiTestSupport {

  private static final Path LIMITED_DIR = limitedDir();

  @DynamicPropertySource
  static void limits(DynamicPropertyRegistry registry) {
    registry.add("fvdisk.test.data-dir", LIMITED_DIR::toString);
    // More free space than any disk has: every write that needs a new chunk is refused.
    registry.add("fvdisk.min-free-space", () -> "1000000TB");
    registry.add("fvdisk.max-write-size", () -> "64KB");
    registry.add("fvdisk.max-json-body-size", () -> "200B");
  }

  private static Path limitedDir() {
    try {
      Path dir =
          Files.createTempDirectory(
              Files.createDirectories(Path.of("target", "it-data")), "limits-");
      Files.write(dir.resolve("broken.fvd"), new byte[] {'n', 'o', 't', ' ', 'a', 'n'});
      return dir;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  @Test
  void write_needing_new_chunks_is_507_and_writes_nothing() {
    String name = createImage("full", MIB, 65536L);
    api()
        .contentType("application/octet-stream")
        .header("Content-Range", contentRange(65536 - 10, 20))
        .body(pattern(20, 1))
        .put(IMAGES + "/" + name + "/data")
        .then()
        .statusCode(507)
        .body("type", equalTo("https://fvdisk.dev/problems/insufficient-storage"))
        .body("neededBytes", equalTo(131072))
        .body("availableBytes", equalTo(0));
    assertThat(read(name, 0, MIB)).isEqualTo(new byte[(int) MIB]);
    api().get(IMAGES + "/" + name).then().body("storage.usedBytes", equalTo(0));
    // Zeroing never allocates, so it still works.
    api()
        .contentType("application/json")
        .body(Map.of("op", "zero", "offsetBytes", 0, "lengthBytes", MIB))
        .patch(IMAGES + "/" + name + "/data")
        .then()
        .statusCode(204);
  }

  @Test
  void write_over_the_limit_is_413_and_options_reports_the_limit() {
    String name = createImage("big", MIB);
    api()
        .options(IMAGES + "/" + name + "/data")
        .then()
        .statusCode(200)
        .body("maxWriteBytes", equalTo(65536));
    api()
        .contentType("application/octet-stream")
        .body(new byte[65537])
        .put(IMAGES + "/" + name + "/data")
        .then()
        .statusCode(413)
        .body("type", equalTo("https://fvdisk.dev/problems/payload-too-large"))
        .body("limitBytes", equalTo(65536));
  }

  @Test
  void json_body_over_the_limit_is_413() {
    // raw(): the base name is longer than the contract allows; the size limit answers first.
    raw()
        .contentType("application/json")
        .body(Map.of("name", "x".repeat(60), "sizeBytes", MIB, "base", "y".repeat(200)))
        .post(IMAGES)
        .then()
        .statusCode(413)
        .body("lengthBytes", greaterThanOrEqualTo(200));
  }

  @Test
  @DisabledIfEnvironmentVariable(
      named = "FVDISK_STORAGE_BACKEND",
      matches = "(?i)s3",
      disabledReason =
          "plants a damaged image file; on a bucket, BucketBackendIntegrationTest damages an object")
  void image_that_cannot_be_opened_is_500_image_corrupt_and_can_be_deleted() {
    api()
        .get(IMAGES + "/broken")
        .then()
        .statusCode(500)
        .body("type", equalTo("https://fvdisk.dev/problems/image-corrupt"))
        .body("image", equalTo("broken"))
        .body("detail", not(containsString(LIMITED_DIR.getFileName().toString())));
    assertThat(api().get(IMAGES).then().statusCode(200).extract().jsonPath().getList("images.name"))
        .doesNotContain("broken");
    api().delete(IMAGES + "/broken").then().statusCode(204);
    assertThat(Files.exists(LIMITED_DIR.resolve("broken.fvd"))).isFalse();
    given().port(port).get(IMAGES + "/broken").then().statusCode(404);
  }
}
