package dev.fvdisk.web;

import static io.restassured.RestAssured.given;

import com.atlassian.oai.validator.OpenApiInteractionValidator;
import com.atlassian.oai.validator.restassured.OpenApiValidationFilter;
import io.restassured.RestAssured;
import io.restassured.specification.RequestSpecification;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

/**
 * Starts the real server on a random port over a fresh data directory, and gives tests two ways in:
 * {@link #api()} validates every request and response against the committed spec, {@link #raw()}
 * validates nothing (for deliberately malformed requests, whose answers tests check by hand). The
 * data directory lives as long as the cached application context, so it is not a JUnit
 * {@code @TempDir}; it sits under {@code target/}.
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT)
abstract class ApiTestSupport {

  static final Path DATA_DIR = newDataDir();
  static final String IMAGES = "/api/v1/images";
  static final long MIB = 1 << 20;

  private static final OpenApiValidationFilter VALIDATION =
      new OpenApiValidationFilter(
          OpenApiInteractionValidator.createForSpecificationUrl(
                  OpenApiSpecTest.SPEC.toUri().toString())
              .build());
  private static final AtomicInteger NAMES = new AtomicInteger();

  static {
    RestAssured.enableLoggingOfRequestAndResponseIfValidationFails();
  }

  @LocalServerPort int port;

  @DynamicPropertySource
  static void dataDir(DynamicPropertyRegistry registry) {
    // A test class with its own server names its own directory in fvdisk.test.data-dir.
    registry.add("fvdisk.data-dir", () -> "${fvdisk.test.data-dir:" + DATA_DIR + "}");
    // The data port listens too, on a free port, so tests can read through either door.
    registry.add("fvdisk.http-data.enabled", () -> "true");
    registry.add("fvdisk.http-data.port", () -> "0");
  }

  @Autowired DataPort dataPort;

  private static Path newDataDir() {
    try {
      Path base = Files.createDirectories(Path.of("target", "it-data"));
      return Files.createTempDirectory(base, "api-");
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  RequestSpecification api() {
    return given().port(port).filter(VALIDATION);
  }

  RequestSpecification raw() {
    return given().port(port).urlEncodingEnabled(false);
  }

  /** A name no other test uses, so tests sharing the server never collide. */
  static String uniqueName(String prefix) {
    return prefix + "-" + NAMES.incrementAndGet() + "-" + System.nanoTime() % 100000;
  }

  /** Marks an image read-only (so that it can be a clone's base). */
  void markReadOnly(String name) {
    api()
        .contentType("application/merge-patch+json")
        .body(Map.of("readOnly", true))
        .patch(IMAGES + "/" + name)
        .then()
        .statusCode(200);
  }

  String createImage(String prefix, long sizeBytes) {
    return createImage(prefix, sizeBytes, null);
  }

  String createImage(String prefix, long sizeBytes, Long chunkSizeBytes) {
    String name = uniqueName(prefix);
    Map<String, Object> body =
        chunkSizeBytes == null
            ? Map.of("name", name, "sizeBytes", sizeBytes)
            : Map.of("name", name, "sizeBytes", sizeBytes, "chunkSizeBytes", chunkSizeBytes);
    api().contentType("application/json").body(body).post(IMAGES).then().statusCode(201);
    return name;
  }

  void write(String name, long offsetBytes, byte[] data) {
    api()
        .contentType("application/octet-stream")
        .header("Content-Range", contentRange(offsetBytes, data.length))
        .body(data)
        .put(IMAGES + "/" + name + "/data")
        .then()
        .statusCode(204);
  }

  byte[] read(String name, long offsetBytes, long lengthBytes) {
    return api()
        .header("Range", "bytes=" + offsetBytes + "-" + (offsetBytes + lengthBytes - 1))
        .get(IMAGES + "/" + name + "/data")
        .then()
        .statusCode(206)
        .extract()
        .asByteArray();
  }

  String etag(String name) {
    return api().get(IMAGES + "/" + name).then().statusCode(200).extract().header("ETag");
  }

  /** SHA-256 of the whole disk, to show a refused request changed nothing. */
  String checksum(String name) {
    byte[] all =
        api().get(IMAGES + "/" + name + "/data").then().statusCode(200).extract().asByteArray();
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(all));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  static String contentRange(long offsetBytes, long lengthBytes) {
    return "bytes " + offsetBytes + "-" + (offsetBytes + lengthBytes - 1) + "/*";
  }

  private static final HttpClient BULK = HttpClient.newHttpClient();

  /**
   * A write-back data write through the JDK's client, unvalidated: RestAssured moved multi-MiB
   * bodies at about 4 MB/s, which made tests that write hundreds of MiB take minutes.
   */
  void writeBulk(String name, long offsetBytes, byte[] data) {
    HttpRequest request =
        HttpRequest.newBuilder(
                URI.create("http://127.0.0.1:" + port + IMAGES + "/" + name + "/data?flush=false"))
            .header("Content-Type", "application/octet-stream")
            .header("Content-Range", contentRange(offsetBytes, data.length))
            .PUT(HttpRequest.BodyPublishers.ofByteArray(data))
            .build();
    try {
      HttpResponse<String> response = BULK.send(request, HttpResponse.BodyHandlers.ofString());
      if (response.statusCode() != 204) {
        throw new AssertionError(
            "write answered " + response.statusCode() + ": " + response.body());
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  /** Zeroes a range, durably (204). */
  void zero(String name, long offsetBytes, long lengthBytes) {
    api()
        .contentType("application/json")
        .body(Map.of("op", "zero", "offsetBytes", offsetBytes, "lengthBytes", lengthBytes))
        .patch(IMAGES + "/" + name + "/data")
        .then()
        .statusCode(204);
  }

  /** Takes a snapshot (201). */
  void takeSnapshot(String name, String snapshot) {
    api()
        .contentType("application/json")
        .body(Map.of("name", snapshot))
        .post(IMAGES + "/" + name + "/snapshots")
        .then()
        .statusCode(201);
  }

  static byte[] pattern(int length, int seed) {
    byte[] b = new byte[length];
    for (int i = 0; i < length; i++) {
      b[i] = (byte) (seed * 31 + i * 7 + 1);
    }
    return b;
  }
}
