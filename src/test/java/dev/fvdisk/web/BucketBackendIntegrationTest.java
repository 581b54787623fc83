package dev.fvdisk.web;

import static io.restassured.RestAssured.given;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.fvdisk.FvdiskApplication;
import dev.fvdisk.objectstore.S3ObjectStore;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.ConfigurableApplicationContext;

/**
 * The service with {@code fvdisk.storage.backend=s3} against a real S3 store (the Ceph RGW {@code
 * .ci/s3-store.sh} starts; skipped without {@code S3_ENDPOINT} unless {@code FVDISK_REQUIRE_S3} is
 * set): what one instance wrote and flushed is served by the next one started on an empty data
 * directory, which has only the bucket to go by; a deleted image leaves no object behind.
 */
class BucketBackendIntegrationTest {

  private static final String BUCKET = "fvdisk-it";
  private static final String IMAGE = "/api/v1/images/disk";

  private static String endpoint;
  private final String prefix = "bucket-backend-" + UUID.randomUUID() + "/";

  @BeforeAll
  static void needsAStore() {
    endpoint = System.getenv("S3_ENDPOINT");
    if (endpoint == null && System.getenv("FVDISK_REQUIRE_S3") != null) {
      throw new IllegalStateException("FVDISK_REQUIRE_S3 is set but S3_ENDPOINT is not");
    }
    assumeTrue(endpoint != null, "no S3 store (S3_ENDPOINT unset)");
  }

  private ConfigurableApplicationContext start(Path dataDir, String... more) {
    List<String> args =
        new ArrayList<>(
            List.of(
                "--server.port=0",
                "--fvdisk.data-dir=" + dataDir,
                "--fvdisk.storage.backend=s3",
                "--fvdisk.storage.s3.endpoint=" + endpoint,
                "--fvdisk.storage.s3.bucket=" + BUCKET,
                "--fvdisk.storage.s3.access-key=" + System.getenv("S3_ACCESS_KEY"),
                "--fvdisk.storage.s3.secret-key=" + System.getenv("S3_SECRET_KEY"),
                "--fvdisk.storage.s3.prefix=" + prefix,
                // Compaction would move chunks around in the bucket; this test is about durability.
                "--fvdisk.compaction.enabled=false"));
    args.addAll(List.of(more));
    return new SpringApplicationBuilder(FvdiskApplication.class).run(args.toArray(String[]::new));
  }

  private static int port(ConfigurableApplicationContext context) {
    return Integer.parseInt(context.getEnvironment().getProperty("local.server.port"));
  }

  private static Path emptyDataDir() throws Exception {
    return Files.createTempDirectory(
        Files.createDirectories(Path.of("target", "it-data")), "bucket-");
  }

  private S3ObjectStore store() throws Exception {
    return S3ObjectStore.open(
        new S3ObjectStore.Settings(
            URI.create(endpoint),
            "us-east-1",
            BUCKET,
            prefix,
            System.getenv("S3_ACCESS_KEY"),
            System.getenv("S3_SECRET_KEY"),
            Duration.ofSeconds(30),
            Duration.ofSeconds(10)));
  }

  @Test
  void flushed_writes_outlive_the_instance_and_its_cache_and_delete_leaves_nothing()
      throws Exception {
    byte[] small = ApiTestSupport.pattern(3000, 4);
    byte[] large = ApiTestSupport.pattern(3 << 20, 5);
    try (ConfigurableApplicationContext context = start(emptyDataDir())) {
      int port = port(context);
      create(port, 16 << 20);
      write(port, 5000, small);
      write(port, 4 << 20, large);
      given()
          .port(port)
          .contentType("application/json")
          .body(Map.of("name", "before"))
          .post(IMAGE + "/snapshots")
          .then()
          .statusCode(201);
      write(port, 5000, new byte[1000]);
    }

    byte[] now = small.clone();
    java.util.Arrays.fill(now, 0, 1000, (byte) 0);
    try (ConfigurableApplicationContext context = start(emptyDataDir())) {
      int port = port(context);
      assertThat(
              given()
                  .port(port)
                  .get("/api/v1/images")
                  .then()
                  .extract()
                  .jsonPath()
                  .getList("images.name"))
          .containsExactly("disk");
      given()
          .port(port)
          .get("/actuator/health")
          .then()
          .statusCode(200)
          .body("components.bucket.status", org.hamcrest.Matchers.equalTo("UP"))
          .body("components.bucket.details.bucket", org.hamcrest.Matchers.equalTo(BUCKET));
      assertThat(range(port, IMAGE + "/data", 5000, 3000)).isEqualTo(now);
      assertThat(range(port, IMAGE + "/data", 4 << 20, 3 << 20)).isEqualTo(large);
      assertThat(range(port, IMAGE + "/snapshots/before/data", 5000, 3000)).isEqualTo(small);
      String metrics = given().port(port).get("/actuator/prometheus").then().extract().asString();
      assertThat(counter(metrics, "fvdisk_bucket_bytes_total{direction=\"download\"}"))
          .as("page bytes fetched to serve the reads on an empty cache")
          .isGreaterThanOrEqualTo(3 << 20);
      assertThat(
              counter(
                  metrics,
                  "fvdisk_bucket_requests_seconds_count{operation=\"get\",outcome=\"success\"}"))
          .isPositive();
      assertThat(counter(metrics, "fvdisk_bucket_cache_fetches_total"))
          .as("pages the cold cache fetched")
          .isGreaterThanOrEqualTo(3);
      assertThat(counter(metrics, "fvdisk_bucket_cache_bytes{state=\"cached\"}"))
          .as("the open image's cached pages")
          .isGreaterThanOrEqualTo(3 << 20);
      assertThat(counter(metrics, "fvdisk_bucket_cache_max_bytes")).isEqualTo(8L << 30);
      // Collection waits a minute behind a checkpoint, so it may not have run yet: the counters
      // are there all the same, and nothing is deleted without a run.
      assertThat(present(metrics, "fvdisk_bucket_gc_runs_total")).isTrue();
      assertThat(present(metrics, "fvdisk_bucket_gc_deleted_objects_total")).isTrue();
      if (counter(metrics, "fvdisk_bucket_gc_runs_total") == 0) {
        assertThat(counter(metrics, "fvdisk_bucket_gc_deleted_objects_total")).isZero();
      }
      assertThat(metrics)
          .as("no leases without fvdisk.node-id, so no lease meters")
          .doesNotContain("fvdisk_bucket_leases");
      Map<String, Object> section =
          given()
              .port(port)
              .get("/actuator/storage")
              .then()
              .statusCode(200)
              .extract()
              .jsonPath()
              .getMap("bucket");
      assertThat(section)
          .containsEntry("endpoint", endpoint)
          .containsEntry("bucket", BUCKET)
          .containsEntry("prefix", prefix)
          .doesNotContainKey("leases");
      assertThat(((Number) section.get("cacheFetches")).longValue()).isGreaterThanOrEqualTo(3);
      given().port(port).delete(IMAGE).then().statusCode(204);
    }

    try (S3ObjectStore store = store()) {
      List<String> left = new ArrayList<>(store.list(""));
      assertThat(left).as("objects left after the image was deleted").isEmpty();
    }
  }

  /**
   * With a node id, an instance reports the leases it holds: one for the image it created, none
   * once it deleted it; nothing was taken over or lost.
   */
  @Test
  void an_instance_with_a_node_id_reports_its_leases() throws Exception {
    try (ConfigurableApplicationContext context =
        start(
            emptyDataDir(),
            "--fvdisk.node-id=it-node",
            "--fvdisk.advertised-url=http://127.0.0.1:1")) {
      int port = port(context);
      create(port, 4 << 20);
      String metrics = given().port(port).get("/actuator/prometheus").then().extract().asString();
      assertThat(counter(metrics, "fvdisk_bucket_leases_held")).isEqualTo(1);
      assertThat(present(metrics, "fvdisk_bucket_leases_taken_over_total")).isTrue();
      assertThat(counter(metrics, "fvdisk_bucket_leases_taken_over_total")).isZero();
      assertThat(present(metrics, "fvdisk_bucket_leases_lost_total")).isTrue();
      assertThat(counter(metrics, "fvdisk_bucket_leases_lost_total")).isZero();
      given()
          .port(port)
          .get("/actuator/storage")
          .then()
          .statusCode(200)
          .body("bucket.leases.nodeId", org.hamcrest.Matchers.equalTo("it-node"))
          .body("bucket.leases.held", org.hamcrest.Matchers.equalTo(1))
          .body("bucket.leases.takenOver", org.hamcrest.Matchers.equalTo(0))
          .body("bucket.leases.lost", org.hamcrest.Matchers.equalTo(0));
      given().port(port).delete(IMAGE).then().statusCode(204);
      metrics = given().port(port).get("/actuator/prometheus").then().extract().asString();
      assertThat(present(metrics, "fvdisk_bucket_leases_held")).isTrue();
      assertThat(counter(metrics, "fvdisk_bucket_leases_held")).isZero();
    }
  }

  /**
   * A data page replaced in the bucket behind the service's back (a valid object, but not the one
   * the image's log names) is refused when a cold cache fetches it: 500 image-corrupt, never the
   * foreign bytes; the image's metadata pages stay intact, so it still opens.
   */
  @Test
  void a_page_object_changed_in_the_bucket_is_refused_on_read() throws Exception {
    byte[] data = ApiTestSupport.pattern(1 << 20, 6);
    try (ConfigurableApplicationContext context = start(emptyDataDir())) {
      int port = port(context);
      create(port, 4 << 20);
      write(port, 2 << 20, data);
    }
    int damaged = 0;
    try (S3ObjectStore store = store()) {
      for (String key : store.list("images/")) {
        // images/<id>/p/<page>/<version>: page 0 holds the image's header and tables.
        String[] parts = key.split("/");
        if (parts.length == 5 && parts[2].equals("p") && Long.parseLong(parts[3]) > 0) {
          byte[] foreign = ApiTestSupport.pattern(1 << 20, 99);
          store.put(key, java.nio.ByteBuffer.wrap(foreign));
          damaged++;
        }
      }
    }
    assertThat(damaged).as("data pages in the bucket").isPositive();
    try (ConfigurableApplicationContext context = start(emptyDataDir())) {
      int port = port(context);
      given()
          .port(port)
          .header("Range", "bytes=" + (2 << 20) + "-" + ((2 << 20) + 4095))
          .get(IMAGE + "/data")
          .then()
          .statusCode(500)
          .contentType("application/problem+json")
          .body("type", org.hamcrest.Matchers.endsWith("/image-corrupt"))
          .body("detail", org.hamcrest.Matchers.containsString("not the one its record names"));
      given().port(port).delete(IMAGE).then().statusCode(204);
    }
  }

  private static void create(int port, long sizeBytes) {
    given()
        .port(port)
        .contentType("application/json")
        .body(Map.of("name", "disk", "sizeBytes", sizeBytes))
        .post("/api/v1/images")
        .then()
        .statusCode(201);
  }

  /** A durable write: the answer comes once the bucket holds it. */
  private static void write(int port, long offset, byte[] bytes) {
    given()
        .port(port)
        .contentType("application/octet-stream")
        .header("Content-Range", "bytes " + offset + "-" + (offset + bytes.length - 1) + "/*")
        .body(bytes)
        .put(IMAGE + "/data")
        .then()
        .statusCode(204);
  }

  /** Whether a Prometheus text answer has the series. */
  private static boolean present(String metrics, String series) {
    return metrics.lines().anyMatch(line -> line.startsWith(series + " "));
  }

  /** The value of one series in a Prometheus text answer; 0 when it is not there. */
  private static double counter(String metrics, String series) {
    for (String line : metrics.split("\n")) {
      if (line.startsWith(series + " ")) {
        return Double.parseDouble(line.substring(series.length() + 1).trim());
      }
    }
    return 0;
  }

  private static byte[] range(int port, String path, long offset, int length) {
    return given()
        .port(port)
        .header("Range", "bytes=" + offset + "-" + (offset + length - 1))
        .get(path)
        .then()
        .statusCode(206)
        .extract()
        .asByteArray();
  }
}
