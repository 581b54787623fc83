package dev.fvdisk.monitoring;

import static dev.fvdisk.monitoring.Monitoring.MIB;
import static dev.fvdisk.monitoring.Monitoring.pattern;
import static org.assertj.core.api.Assertions.assertThat;
import static org.hamcrest.Matchers.equalTo;

import io.restassured.path.json.JsonPath;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** The storage health component goes DOWN exactly when the contract says, and comes back UP. */
class StorageHealthIntegrationTest {

  /** Above the free space of any file system this runs on: 10^18 bytes. */
  private static final String UNREACHABLE_THRESHOLD = "--fvdisk.min-free-space=1000000TB";

  @Test
  void health_is_down_while_free_space_is_below_the_threshold_and_up_again_without() {
    Path dataDir = Monitoring.newDataDir("health");
    try (Monitoring service = Monitoring.start(dataDir)) {
      service.createImage("kept", 4 * MIB, MIB);
      service.write("kept", 0, pattern(1000, 1));
    }
    try (Monitoring service = Monitoring.start(dataDir, UNREACHABLE_THRESHOLD)) {
      JsonPath health =
          service.http().get("/actuator/health").then().statusCode(503).extract().jsonPath();
      assertThat(health.getString("status")).isEqualTo("DOWN");
      assertThat(health.getString("components.storage.status")).isEqualTo("DOWN");
      assertThat(health.getLong("components.storage.details.thresholdBytes"))
          .isEqualTo(1_000_000L * 1024 * 1024 * 1024 * 1024);
      assertThat(health.getLong("components.storage.details.availableBytes")).isZero();
      assertThat(health.getInt("components.storage.details.openImages")).isEqualTo(1);
      assertThat(health.getLong("components.storage.details.usedBytes")).isEqualTo(MIB);
      assertThat(service.storage().getLong("availableBytes")).isZero();
      // Reads go on; a write that needs a new chunk is refused for want of space.
      service
          .http()
          .header("Range", "bytes=0-999")
          .get("/api/v1/images/kept/data")
          .then()
          .statusCode(206);
      service
          .http()
          .contentType("application/octet-stream")
          .header("Content-Range", "bytes 2097152-2097161/*")
          .body(new byte[10])
          .put("/api/v1/images/kept/data")
          .then()
          .statusCode(507);
    }
    try (Monitoring service = Monitoring.start(dataDir)) {
      service
          .http()
          .get("/actuator/health")
          .then()
          .statusCode(200)
          .body("status", equalTo("UP"))
          .body("components.storage.status", equalTo("UP"))
          .body("components.storage.details.thresholdBytes", equalTo((int) (100 * MIB)))
          .body("components.storage.details.writable", equalTo(true));
    }
  }

  @Test
  void health_is_down_while_the_data_directory_is_gone_and_up_once_it_is_back() throws Exception {
    Path dataDir = Monitoring.newDataDir("health-dir");
    try (Monitoring service = Monitoring.start(dataDir)) {
      service.createImage("moved", 4 * MIB, MIB);
      service.http().get("/actuator/health").then().statusCode(200);
      // Permissions do not stop root, so the directory is moved away instead: the open image
      // keeps working through its open file, but no new file could be made.
      Path away = dataDir.resolveSibling(dataDir.getFileName() + "-away");
      Files.move(dataDir, away);
      try {
        service
            .http()
            .get("/actuator/health")
            .then()
            .statusCode(503)
            .body("components.storage.status", equalTo("DOWN"))
            .body("components.storage.details.writable", equalTo(false));
      } finally {
        Files.move(away, dataDir);
      }
      service
          .http()
          .get("/actuator/health")
          .then()
          .statusCode(200)
          .body("components.storage.status", equalTo("UP"));
    }
  }
}
