package dev.fvdisk.web;

import static org.assertj.core.api.Assertions.assertThat;

import io.restassured.path.json.JsonPath;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * Zeroing gives space back: 256 MiB written and then zeroed bring {@code usedBytes} back to where
 * it was, the space is reused by the next writes without the file growing, background compaction
 * moves the chunks written last into the freed slots so that the file shrinks while the image stays
 * open, and once the image is closed (marking it read-only closes the writable image) the file is
 * cut back to its metadata.
 */
class SpaceReclamationIntegrationTest extends ApiTestSupport {

  private static final int PIECE = 8 << 20;
  private static final long WRITTEN = 256 * MIB;
  private static final Duration COMPACTION_WAIT = Duration.ofMinutes(2);

  @Test
  void zeroing_what_was_written_gives_its_space_back_to_the_image_and_then_to_the_file()
      throws InterruptedException {
    String name = createImage("reclaim", 4 * WRITTEN);
    try {
      JsonPath empty = storage(name);
      writeRegion(name, 0, 0);
      JsonPath full = storage(name);
      assertThat(full.getLong("usedBytes")).isEqualTo(WRITTEN);

      zero(name, 0, WRITTEN);
      JsonPath zeroed = storage(name);
      System.out.printf(
          "SpaceReclamationIntegrationTest: usedBytes %d empty, %d after 256 MiB written, %d after"
              + " zeroing; fileBytes %d, %d, %d%n",
          empty.getLong("usedBytes"),
          full.getLong("usedBytes"),
          zeroed.getLong("usedBytes"),
          empty.getLong("fileBytes"),
          full.getLong("fileBytes"),
          zeroed.getLong("fileBytes"));
      assertThat(zeroed.getLong("usedBytes")).isEqualTo(empty.getLong("usedBytes"));
      assertThat(read(name, WRITTEN - 4096, 4096)).isEqualTo(new byte[4096]);

      // The freed chunks are reused: the same amount written elsewhere does not grow the file
      // (compaction, if it ran meanwhile, can only have made it smaller).
      writeRegion(name, WRITTEN, 100);
      assertThat(storage(name).getLong("fileBytes")).isLessThanOrEqualTo(full.getLong("fileBytes"));
      assertThat(read(name, WRITTEN, 100)).isEqualTo(Arrays.copyOf(pattern(PIECE, 100), 100));

      // A third region lands after the second in the file; zeroing the second frees the slots
      // below it, and compaction moves the third down into them while the image stays open.
      writeRegion(name, 2 * WRITTEN, 200);
      JsonPath grown = storage(name);
      zero(name, WRITTEN, WRITTEN);
      long zeroedAt = System.nanoTime();
      JsonPath compacted = storage(name);
      while (compacted.getLong("fileBytes") > full.getLong("fileBytes")
          && System.nanoTime() - zeroedAt < COMPACTION_WAIT.toNanos()) {
        Thread.sleep(100);
        compacted = storage(name);
      }
      System.out.printf(
          "SpaceReclamationIntegrationTest: with 256 MiB in use, fileBytes %d before zeroing the"
              + " region below it, %d after compaction (%d ms after the zero)%n",
          grown.getLong("fileBytes"),
          compacted.getLong("fileBytes"),
          (System.nanoTime() - zeroedAt) / 1_000_000);
      assertThat(grown.getLong("fileBytes")).isGreaterThan(full.getLong("fileBytes"));
      assertThat(compacted.getLong("usedBytes")).isEqualTo(WRITTEN);
      assertThat(compacted.getLong("fileBytes")).isLessThanOrEqualTo(full.getLong("fileBytes"));
      assertThat(compactionCounter("fvdisk_compaction_moved_bytes_total")).isPositive();
      assertThat(compactionCounter("fvdisk_compaction_released_bytes_total")).isPositive();
      assertRegion(name, 2 * WRITTEN, 200);
      assertThat(read(name, WRITTEN, 4096)).isEqualTo(new byte[4096]);
      api().post(IMAGES + "/" + name + "/check").then().statusCode(200);

      // Freed at the end of the file: cut off when the image closes.
      zero(name, 2 * WRITTEN, WRITTEN);
      markReadOnly(name);
      JsonPath closed = storage(name);
      System.out.printf(
          "SpaceReclamationIntegrationTest: after zeroing all and closing, usedBytes %d, fileBytes"
              + " %d%n",
          closed.getLong("usedBytes"), closed.getLong("fileBytes"));
      assertThat(closed.getLong("usedBytes")).isZero();
      assertThat(closed.getLong("fileBytes")).isLessThan(full.getLong("fileBytes") - WRITTEN);
      assertThat(read(name, 0, 4096)).isEqualTo(new byte[4096]);
      api().post(IMAGES + "/" + name + "/check").then().statusCode(200);
    } finally {
      api().delete(IMAGES + "/" + name);
    }
  }

  private double compactionCounter(String sample) {
    String scrape = raw().get("/actuator/prometheus").then().statusCode(200).extract().asString();
    return scrape
        .lines()
        .filter(line -> line.startsWith(sample + " ") || line.startsWith(sample + "{"))
        .mapToDouble(line -> Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1)))
        .sum();
  }

  /** Writes {@link #WRITTEN} bytes at {@code offsetBytes}, piece {@code i} as pattern seed + i. */
  private void writeRegion(String name, long offsetBytes, int seed) {
    for (long at = 0; at < WRITTEN; at += PIECE) {
      writeBulk(name, offsetBytes + at, pattern(PIECE, seed + (int) (at / PIECE)));
    }
  }

  private void assertRegion(String name, long offsetBytes, int seed) {
    for (long at = 0; at < WRITTEN; at += PIECE) {
      byte[] expected = pattern(PIECE, seed + (int) (at / PIECE));
      assertThat(Arrays.equals(readFast(name, offsetBytes + at, PIECE), expected))
          .as("the %d MiB at %d MiB", PIECE / MIB, (offsetBytes + at) / MIB)
          .isTrue();
    }
  }

  private byte[] readFast(String name, long offsetBytes, int lengthBytes) {
    HttpRequest request =
        HttpRequest.newBuilder(
                URI.create("http://127.0.0.1:" + port + IMAGES + "/" + name + "/data"))
            .header("Range", "bytes=" + offsetBytes + "-" + (offsetBytes + lengthBytes - 1))
            .build();
    try {
      HttpResponse<byte[]> response = HTTP.send(request, HttpResponse.BodyHandlers.ofByteArray());
      assertThat(response.statusCode()).isEqualTo(206);
      return response.body();
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  private static final HttpClient HTTP = HttpClient.newHttpClient();

  private JsonPath storage(String name) {
    return api()
        .get(IMAGES + "/" + name)
        .then()
        .statusCode(200)
        .extract()
        .jsonPath()
        .setRootPath("storage");
  }
}
