package dev.fvdisk.monitoring;

import static io.restassured.RestAssured.given;

import dev.fvdisk.FvdiskApplication;
import dev.fvdisk.config.NbdListener;
import io.restassured.path.json.JsonPath;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.OptionalDouble;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.ConfigurableApplicationContext;

/**
 * A running service for monitoring tests, started on its own data directory so the totals it
 * reports are this test's alone, with helpers for the API and the actuator endpoints. Started like
 * the application itself (not through the test framework), so the Prometheus registry is the real
 * one and a test can stop and restart it on the same directory.
 */
final class Monitoring implements AutoCloseable {

  static final long MIB = 1 << 20;

  final Path dataDir;
  private final ConfigurableApplicationContext context;
  final int port;

  private Monitoring(Path dataDir, String... args) {
    this.dataDir = dataDir;
    List<String> all = new ArrayList<>(List.of("--server.port=0", "--fvdisk.data-dir=" + dataDir));
    all.addAll(List.of(args));
    context = new SpringApplicationBuilder(FvdiskApplication.class).run(all.toArray(String[]::new));
    port = Integer.parseInt(context.getEnvironment().getProperty("local.server.port"));
  }

  static Monitoring start(Path dataDir, String... args) {
    return new Monitoring(dataDir, args);
  }

  static Path newDataDir(String prefix) {
    try {
      return Files.createTempDirectory(
          Files.createDirectories(Path.of("target", "it-data")), prefix + "-");
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The NBD listener's port, when the service was started with it on. */
  int nbdPort() {
    return context.getBean(NbdListener.class).port();
  }

  io.restassured.specification.RequestSpecification http() {
    return given().port(port);
  }

  void createImage(String name, long sizeBytes, long chunkSizeBytes) {
    http()
        .contentType("application/json")
        .body(Map.of("name", name, "sizeBytes", sizeBytes, "chunkSizeBytes", chunkSizeBytes))
        .post("/api/v1/images")
        .then()
        .statusCode(201);
  }

  void write(String name, long offsetBytes, byte[] data) {
    http()
        .contentType("application/octet-stream")
        .header(
            "Content-Range", "bytes " + offsetBytes + "-" + (offsetBytes + data.length - 1) + "/*")
        .body(data)
        .put("/api/v1/images/" + name + "/data")
        .then()
        .statusCode(204);
  }

  JsonPath storage() {
    return http().get("/actuator/storage").then().statusCode(200).extract().jsonPath();
  }

  /** The storage endpoint's entry for one image. */
  Map<String, Object> imageEntry(String name) {
    Map<String, Object> entry = storage().getMap("images.find { it.name == '" + name + "' }");
    if (entry == null) {
      throw new AssertionError("no storage entry for " + name);
    }
    return entry;
  }

  String prometheus() {
    return http().get("/actuator/prometheus").then().statusCode(200).extract().asString();
  }

  /** The value of one series (name with its labels, as Prometheus prints them), if present. */
  static OptionalDouble sample(String scrape, String series) {
    Matcher m = Pattern.compile("(?m)^" + Pattern.quote(series) + " (\\S+)$").matcher(scrape);
    return m.find() ? OptionalDouble.of(Double.parseDouble(m.group(1))) : OptionalDouble.empty();
  }

  static byte[] pattern(int length, int seed) {
    byte[] b = new byte[length];
    for (int i = 0; i < length; i++) {
      b[i] = (byte) (seed * 31 + i * 7 + 1);
    }
    return b;
  }

  @Override
  public void close() {
    context.close();
  }
}
