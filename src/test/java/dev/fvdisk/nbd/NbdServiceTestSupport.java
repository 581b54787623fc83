package dev.fvdisk.nbd;

import static io.restassured.RestAssured.given;

import dev.fvdisk.config.NbdListener;
import io.restassured.path.json.JsonPath;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

/**
 * The really started service for NBD tests: its NBD port, and the HTTP calls the tests make to set
 * images up and to check over HTTP what NBD clients did. A data directory lives as long as the
 * cached application context, which test classes with the same settings share, so it sits under
 * {@code target/} rather than in a JUnit temporary directory.
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT)
abstract class NbdServiceTestSupport {

  static final String IMAGES = "/api/v1/images";
  static final long MIB = 1 << 20;

  private static final AtomicInteger NAMES = new AtomicInteger();

  /**
   * A fresh directory for each test class's context: classes with other settings get a context, and
   * so a service, of their own, which must not share a data directory with a cached one.
   */
  @DynamicPropertySource
  static void dataDir(DynamicPropertyRegistry registry) {
    Path dir = newDataDir();
    registry.add("fvdisk.data-dir", dir::toString);
  }

  private static Path newDataDir() {
    try {
      Path base = Files.createDirectories(Path.of("target", "it-data"));
      return Files.createTempDirectory(base, "nbd-");
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  @LocalServerPort int httpPort;
  @Autowired NbdListener nbd;

  /** The NBD URI of an image's export. */
  String uri(String name) {
    return "nbd://127.0.0.1:" + nbd.port() + "/" + name;
  }

  /** Creates an image of {@code sizeBytes} under a name no other test uses, and returns it. */
  String createImage(String prefix, long sizeBytes) {
    String name = prefix + "-" + NAMES.incrementAndGet();
    create(Map.of("name", name, "sizeBytes", sizeBytes));
    return name;
  }

  void create(Map<String, Object> body) {
    given()
        .port(httpPort)
        .contentType("application/json")
        .body(body)
        .post(IMAGES)
        .then()
        .statusCode(201);
  }

  void patch(String name, Map<String, Object> changes) {
    given()
        .port(httpPort)
        .contentType("application/merge-patch+json")
        .body(changes)
        .patch(IMAGES + "/" + name)
        .then()
        .statusCode(200);
  }

  JsonPath image(String name) {
    return given()
        .port(httpPort)
        .get(IMAGES + "/" + name)
        .then()
        .statusCode(200)
        .extract()
        .jsonPath();
  }

  byte[] httpRead(String name, long offset, long length) {
    return given()
        .port(httpPort)
        .header("Range", "bytes=" + offset + "-" + (offset + length - 1))
        .get(IMAGES + "/" + name + "/data")
        .then()
        .statusCode(206)
        .extract()
        .asByteArray();
  }

  byte[] httpReadAll(String name) {
    return given()
        .port(httpPort)
        .get(IMAGES + "/" + name + "/data")
        .then()
        .statusCode(200)
        .extract()
        .asByteArray();
  }

  void httpWrite(String name, long offset, byte[] data) {
    given()
        .port(httpPort)
        .contentType("application/octet-stream")
        .header("Content-Range", "bytes " + offset + "-" + (offset + data.length - 1) + "/*")
        .body(data)
        .put(IMAGES + "/" + name + "/data")
        .then()
        .statusCode(204);
  }
}
