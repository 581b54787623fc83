package dev.fvdisk.monitoring;

import static dev.fvdisk.monitoring.Monitoring.MIB;
import static dev.fvdisk.monitoring.Monitoring.pattern;
import static dev.fvdisk.monitoring.Monitoring.sample;
import static org.assertj.core.api.Assertions.assertThat;
import static org.hamcrest.Matchers.emptyOrNullString;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.not;

import io.restassured.path.json.JsonPath;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The storage endpoint, the meters, info and what is exposed, against one running service that owns
 * its data directory, so its totals are this class's images alone. On local files, or on a bucket
 * when the environment says so ({@code FVDISK_STORAGE_BACKEND=s3} and the bucket's settings).
 */
class StorageEndpointIntegrationTest {

  private static final boolean ON_BUCKET =
      "s3".equalsIgnoreCase(System.getenv("FVDISK_STORAGE_BACKEND"));

  private static Monitoring service;

  @BeforeAll
  static void start() {
    // A cache bound other than the default, to see it reported; ignored on local files.
    service =
        Monitoring.start(
            Monitoring.newDataDir("monitoring"), "--fvdisk.storage.s3.cache-max-bytes=1GB");
  }

  @AfterAll
  static void stop() {
    service.close();
  }

  @Test
  void used_bytes_grow_by_whole_chunks_and_available_bytes_shrink() throws Exception {
    service.createImage("grow", 64 * MIB, MIB);
    JsonPath before = service.storage();
    Map<String, Object> entry = service.imageEntry("grow");
    assertThat(entry)
        .containsEntry("provisionedBytes", (int) (64 * MIB))
        .containsEntry("usedBytes", 0)
        .containsEntry("leakedChunks", 0)
        .containsKeys("fileBytes", "journalUsedRatio")
        .hasSize(6);
    List<String> keys =
        new ArrayList<>(
            List.of("usedBytes", "availableBytes", "provisionedBytes", "leakedChunks", "images"));
    if (ON_BUCKET) {
      keys.add("bucket");
    }
    assertThat(before.getMap("$").keySet()).containsExactlyInAnyOrderElementsOf(keys);

    // 3 MiB starting half-way into chunk 0 touches chunks 0 to 3: four chunks.
    service.write("grow", MIB / 2, pattern((int) (3 * MIB), 1));
    JsonPath after = service.storage();
    assertThat(after.getLong("usedBytes") - before.getLong("usedBytes")).isEqualTo(4 * MIB);
    assertThat(((Number) service.imageEntry("grow").get("usedBytes")).longValue())
        .isEqualTo(4 * MIB);
    // Writing into chunks that already hold data allocates nothing.
    service.write("grow", MIB, pattern(4096, 2));
    assertThat(service.storage().getLong("usedBytes")).isEqualTo(after.getLong("usedBytes"));
    assertThat(after.getLong("provisionedBytes")).isEqualTo(before.getLong("provisionedBytes"));

    // Available bytes are the file system's free space above the threshold. Other processes on
    // the machine change free space too, so compare with it loosely, and look for the shrink a
    // large write causes over a few tries rather than in one exact difference.
    long threshold = 100 * MIB;
    // The reading is taken between two measurements, so free space that other processes take or
    // give back meanwhile widens the window instead of failing the test.
    long usableBefore = Files.getFileStore(service.dataDir).getUsableSpace();
    long available = service.storage().getLong("availableBytes");
    long usableAfter = Files.getFileStore(service.dataDir).getUsableSpace();
    assertThat(available)
        .isBetween(
            Math.min(usableBefore, usableAfter) - threshold - 512 * MIB,
            Math.max(usableBefore, usableAfter));
    long bestShrink = Long.MIN_VALUE;
    for (int attempt = 0; attempt < 3 && bestShrink < 12 * MIB; attempt++) {
      long availableBefore = service.storage().getLong("availableBytes");
      for (int chunk = 0; chunk < 16; chunk++) {
        service.write(
            "grow", (8 + attempt * 16L + chunk) * MIB, pattern((int) MIB, attempt * 16 + chunk));
      }
      bestShrink =
          Math.max(bestShrink, availableBefore - service.storage().getLong("availableBytes"));
    }
    assertThat(bestShrink)
        .as("available bytes shrink as 16 MiB are written")
        .isGreaterThanOrEqualTo(12 * MIB);
  }

  @Test
  void prometheus_serves_totals_and_per_image_meters_that_go_with_the_image() {
    service.createImage("scraped", 8 * MIB, MIB);
    service.write("scraped", 0, pattern(5000, 3));
    service
        .http()
        .header("Range", "bytes=0-4999")
        .get("/api/v1/images/scraped/data")
        .then()
        .statusCode(206);

    String scrape = service.prometheus();
    for (String total :
        new String[] {
          "fvdisk_storage_used_bytes",
          "fvdisk_storage_available_bytes",
          "fvdisk_storage_provisioned_bytes",
          "fvdisk_chunks_leaked",
          "fvdisk_images_failed",
          "fvdisk_images_open"
        }) {
      assertThat(sample(scrape, total)).as(total).isPresent();
    }
    String tag = "{image=\"scraped\"}";
    assertThat(sample(scrape, "fvdisk_image_used_bytes" + tag)).hasValue((double) MIB);
    assertThat(sample(scrape, "fvdisk_image_leaked_chunks" + tag)).hasValue(0);
    assertThat(sample(scrape, "fvdisk_image_journal_used" + tag)).isPresent();
    assertThat(sample(scrape, "fvdisk_image_copy_on_read_in_flight_bytes" + tag)).hasValue(0);
    assertThat(sample(scrape, "fvdisk_storage_used_bytes").getAsDouble())
        .isEqualTo((double) service.storage().getLong("usedBytes"));
    assertThat(sample(scrape, "fvdisk_images_failed")).hasValue(0);
    // The ranged read is answered ahead of Spring MVC (RangeReadFilter) and still counted under
    // its route, not as an unknown URI.
    assertThat(scrape.lines())
        .anyMatch(
            line ->
                line.startsWith("http_server_requests_seconds_count{")
                    && line.contains("method=\"GET\"")
                    && line.contains("status=\"206\"")
                    && line.contains("uri=\"/api/v1/images/{name}/data\""));
    // So is the ranged write, answered ahead of Spring MVC by RangeWriteFilter.
    assertThat(scrape.lines())
        .anyMatch(
            line ->
                line.startsWith("http_server_requests_seconds_count{")
                    && line.contains("method=\"PUT\"")
                    && line.contains("status=\"204\"")
                    && line.contains("uri=\"/api/v1/images/{name}/data\""));
    assertThat(scrape.lines())
        .noneMatch(
            line ->
                line.startsWith("http_server_requests_seconds_count{")
                    && line.contains("uri=\"UNKNOWN\""));
    assertThat(sample(scrape, "fvdisk_io_read_seconds_count").getAsDouble()).isPositive();
    assertThat(sample(scrape, "fvdisk_io_read_bytes_sum").getAsDouble())
        .isGreaterThanOrEqualTo(5000);
    assertThat(sample(scrape, "fvdisk_io_write_seconds_count").getAsDouble()).isPositive();
    assertThat(sample(scrape, "fvdisk_io_write_bytes_sum").getAsDouble())
        .isGreaterThanOrEqualTo(5000);
    assertThat(sample(scrape, "fvdisk_io_flush_seconds_count").getAsDouble()).isPositive();

    service.http().get("/actuator/metrics/fvdisk.storage.used").then().statusCode(200);

    service.http().delete("/api/v1/images/scraped").then().statusCode(204);
    assertThat(service.prometheus()).doesNotContain(tag);
  }

  @Test
  void clones_report_prefetch_progress() {
    service.createImage("base", MIB, 65536);
    service.write("base", 0, pattern(4096, 4));
    service
        .http()
        .contentType("application/merge-patch+json")
        .body(Map.of("readOnly", true))
        .patch("/api/v1/images/base")
        .then()
        .statusCode(200);
    service
        .http()
        .contentType("application/json")
        .body(Map.of("name", "clone", "base", "base"))
        .post("/api/v1/images")
        .then()
        .statusCode(201);
    String scrape = service.prometheus();
    assertThat(sample(scrape, "fvdisk_image_prefetch_progress{image=\"clone\"}")).isPresent();
    assertThat(sample(scrape, "fvdisk_image_prefetch_progress{image=\"base\"}")).isEmpty();
  }

  /**
   * On a bucket, {@code /actuator/storage} says where it is and how the cache and garbage
   * collection fare, never with its keys; without {@code fvdisk.node-id} there are no leases to
   * report. On local files there is no such section.
   */
  @Test
  void the_bucket_section_is_there_only_on_a_bucket_and_holds_no_keys() {
    String body =
        service.http().get("/actuator/storage").then().statusCode(200).extract().asString();
    Map<String, Object> bucket = service.storage().getMap("bucket");
    if (!ON_BUCKET) {
      assertThat(bucket).as("bucket section on local files").isNull();
      return;
    }
    assertThat(bucket)
        .containsOnlyKeys(
            "endpoint",
            "bucket",
            "prefix",
            "cacheMaxBytes",
            "cachedBytes",
            "dirtyBytes",
            "cacheHits",
            "cacheFetches",
            "cacheEvictions",
            "gcRuns",
            "gcDeletedObjects")
        .containsEntry("endpoint", System.getenv("FVDISK_STORAGE_S3_ENDPOINT"))
        .containsEntry("bucket", System.getenv("FVDISK_STORAGE_S3_BUCKET"));
    assertThat(((Number) bucket.get("cacheMaxBytes")).longValue()).isEqualTo(1L << 30);
    assertThat((String) bucket.get("prefix")).endsWith("/").doesNotStartWith("/");
    assertThat(bucket.keySet())
        .noneMatch(key -> key.toLowerCase(Locale.ROOT).contains("secret"))
        .noneMatch(key -> key.toLowerCase(Locale.ROOT).contains("access"));
    assertThat(body)
        .doesNotContain(System.getenv("FVDISK_STORAGE_S3_SECRET_KEY"))
        .doesNotContain(System.getenv("FVDISK_STORAGE_S3_ACCESS_KEY"));
  }

  @Test
  void info_shows_the_build_and_format_versions() {
    service
        .http()
        .get("/actuator/info")
        .then()
        .statusCode(200)
        .body("build.version", not(emptyOrNullString()))
        .body("fvdisk.formatVersion", equalTo(2));
  }

  @Test
  void only_the_monitoring_endpoints_are_exposed() {
    Map<String, Object> links =
        service
            .http()
            .get("/actuator")
            .then()
            .statusCode(200)
            .extract()
            .jsonPath()
            .getMap("_links");
    assertThat(links.keySet())
        .allMatch(
            link ->
                link.equals("self")
                    || link.startsWith("health")
                    || link.equals("info")
                    || link.startsWith("metrics")
                    || link.equals("prometheus")
                    || link.equals("storage"),
            "only health, info, metrics, prometheus and storage");
    for (String hidden :
        new String[] {
          "env",
          "configprops",
          "heapdump",
          "threaddump",
          "beans",
          "loggers",
          "mappings",
          "conditions",
          "shutdown",
          "scheduledtasks",
          "caches",
          "sbom",
          "startup"
        }) {
      // Not exposed (404); the security filter may refuse it before that (403). Never served.
      service
          .http()
          .get("/actuator/" + hidden)
          .then()
          .statusCode(
              org.hamcrest.Matchers.anyOf(
                  org.hamcrest.Matchers.is(403), org.hamcrest.Matchers.is(404)));
    }
  }
}
