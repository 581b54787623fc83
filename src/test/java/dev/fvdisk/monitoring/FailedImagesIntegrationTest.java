package dev.fvdisk.monitoring;

import static dev.fvdisk.monitoring.Monitoring.sample;
import static io.restassured.RestAssured.given;
import static org.assertj.core.api.Assertions.assertThat;

import dev.fvdisk.service.FaultInjectingImageDirectory;
import dev.fvdisk.service.ImageDirectory;
import io.restassured.path.json.JsonPath;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;
import org.springframework.test.context.bean.override.convention.TestBean;

/**
 * Images that failed to open, and an image latched by a failed flush, are listed in the storage
 * health details and counted by the failed-images meter, while the service stays UP.
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT)
class FailedImagesIntegrationTest {

  private static final Path DATA_DIR = dataDirWithABrokenImage();

  @TestBean ImageDirectory imageDirectory;

  @Autowired ImageDirectory directory;

  @LocalServerPort int port;

  static ImageDirectory imageDirectory() {
    try {
      return new FaultInjectingImageDirectory(DATA_DIR.toRealPath());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  @DynamicPropertySource
  static void dataDir(DynamicPropertyRegistry registry) {
    registry.add("fvdisk.data-dir", DATA_DIR::toString);
  }

  private static Path dataDirWithABrokenImage() {
    Path dir = Monitoring.newDataDir("failed");
    try {
      Files.write(dir.resolve("broken.fvd"), new byte[8192]);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return dir;
  }

  @Test
  void failed_and_latched_images_show_in_health_and_in_the_meter_without_taking_it_down() {
    given()
        .port(port)
        .contentType("application/json")
        .body(Map.of("name", "faulty-vm", "sizeBytes", 1 << 20, "chunkSizeBytes", 65536))
        .post("/api/v1/images")
        .then()
        .statusCode(201);
    write("faulty-vm", 204);
    JsonPath health = health(200);
    assertThat(health.getMap("components.storage.details.failedImages")).containsOnlyKeys("broken");
    assertThat(health.getList("components.storage.details.latchedImages")).isEmpty();
    assertThat(sample(prometheus(), "fvdisk_images_failed")).hasValue(1);

    ((FaultInjectingImageDirectory) directory).failFlushes();
    write("faulty-vm", 503);

    health = health(200);
    assertThat(health.getString("components.storage.status")).isEqualTo("UP");
    assertThat(health.getList("components.storage.details.latchedImages"))
        .containsExactly("faulty-vm");
    assertThat(health.getMap("components.storage.details.failedImages")).containsOnlyKeys("broken");
    assertThat((String) health.get("components.storage.details.failedImages.broken"))
        .doesNotContain(DATA_DIR.toString());
    assertThat(sample(prometheus(), "fvdisk_images_failed")).hasValue(2);
  }

  private void write(String name, int status) {
    given()
        .port(port)
        .contentType("application/octet-stream")
        .header("Content-Range", "bytes 0-3/*")
        .body(new byte[] {1, 2, 3, 4})
        .put("/api/v1/images/" + name + "/data")
        .then()
        .statusCode(status);
  }

  private JsonPath health(int status) {
    return given()
        .port(port)
        .get("/actuator/health")
        .then()
        .statusCode(status)
        .extract()
        .jsonPath();
  }

  private String prometheus() {
    return given()
        .port(port)
        .get("/actuator/prometheus")
        .then()
        .statusCode(200)
        .extract()
        .asString();
  }
}
