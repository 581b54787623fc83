package dev.fvdisk.monitoring;

import static dev.fvdisk.monitoring.Monitoring.sample;
import static org.assertj.core.api.Assertions.assertThat;
import static org.hamcrest.Matchers.equalTo;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.DisabledIfEnvironmentVariable;

/**
 * Leaked chunks end to end: an image that leaked chunks in a crash is reported with them after the
 * service starts on it, in the storage endpoint and in Prometheus, and the count falls as writes
 * reuse them and a repair reclaims the rest.
 */
@DisabledIfEnvironmentVariable(
    named = "FVDISK_STORAGE_BACKEND",
    matches = "(?i)s3",
    disabledReason = "writes a leaky image file into the data directory")
class LeakedChunksIntegrationTest {

  private static final String TAG = "{image=\"leaky\"}";

  @Test
  void leaked_chunks_show_after_a_crash_and_fall_as_they_are_reused_and_repaired()
      throws Exception {
    Path dataDir = Monitoring.newDataDir("leaks");
    long leaked = LeakyImages.write(dataDir.resolve("leaky.fvd"));
    assertThat(leaked).isPositive();
    System.out.println("Leaked chunks after the injected crash: " + leaked);

    try (Monitoring service = Monitoring.start(dataDir)) {
      assertThat(service.storage().getLong("leakedChunks")).isEqualTo(leaked);
      assertThat(((Number) service.imageEntry("leaky").get("leakedChunks")).longValue())
          .isEqualTo(leaked);
      String scrape = service.prometheus();
      assertThat(sample(scrape, "fvdisk_chunks_leaked")).hasValue((double) leaked);
      assertThat(sample(scrape, "fvdisk_image_leaked_chunks" + TAG)).hasValue((double) leaked);
      service
          .http()
          .get("/actuator/health")
          .then()
          .statusCode(200)
          .body("components.storage.details.leakedChunks", equalTo((int) leaked));

      // A write into a chunk that holds nothing takes a leaked slot instead of growing the file.
      long fileBytes = ((Number) service.imageEntry("leaky").get("fileBytes")).longValue();
      long target = firstUnmappedChunk(service);
      service.write("leaky", target * LeakyImages.CHUNK_BYTES, Monitoring.pattern(100, 7));
      assertThat(service.storage().getLong("leakedChunks")).isEqualTo(leaked - 1);
      assertThat(((Number) service.imageEntry("leaky").get("fileBytes")).longValue())
          .isEqualTo(fileBytes);

      service.http().post("/api/v1/images/leaky/check?repair=true").then().statusCode(200);
      assertThat(service.storage().getLong("leakedChunks")).isZero();
      assertThat(sample(service.prometheus(), "fvdisk_chunks_leaked")).hasValue(0);
      assertThat(sample(service.prometheus(), "fvdisk_image_leaked_chunks" + TAG)).hasValue(0);
    }
  }

  /** The first chunk the map shows as unallocated. */
  private static long firstUnmappedChunk(Monitoring service) {
    java.util.List<java.util.Map<String, Object>> extents =
        service
            .http()
            .get("/api/v1/images/leaky/map")
            .then()
            .statusCode(200)
            .extract()
            .jsonPath()
            .getList("extents");
    for (java.util.Map<String, Object> extent : extents) {
      if (!"data".equals(extent.get("state"))) {
        return ((Number) extent.get("offsetBytes")).longValue() / LeakyImages.CHUNK_BYTES;
      }
    }
    throw new AssertionError("every chunk holds data: " + extents);
  }
}
