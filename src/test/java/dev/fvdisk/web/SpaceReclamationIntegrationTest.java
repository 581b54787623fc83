package dev.fvdisk.web;

import static org.assertj.core.api.Assertions.assertThat;

import io.restassured.path.json.JsonPath;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Zeroing gives space back: 256 MiB written and then zeroed bring {@code usedBytes} back to where
 * it was, the space is reused by the next writes without the file growing, and once the image is
 * closed (marking it read-only closes the writable image) the file is cut back too.
 */
class SpaceReclamationIntegrationTest extends ApiTestSupport {

  private static final int PIECE = 8 << 20;
  private static final long WRITTEN = 256 * MIB;

  @Test
  void zeroing_what_was_written_gives_its_space_back_to_the_image_and_then_to_the_file() {
    String name = createImage("reclaim", 512 * MIB);
    try {
      JsonPath empty = storage(name);
      for (long at = 0; at < WRITTEN; at += PIECE) {
        write(name, at, pattern(PIECE, (int) (at / PIECE)));
      }
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

      // The freed chunks are reused: the same amount written elsewhere does not grow the file.
      for (long at = WRITTEN; at < 2 * WRITTEN; at += PIECE) {
        write(name, at, pattern(PIECE, 7));
      }
      assertThat(storage(name).getLong("fileBytes")).isEqualTo(full.getLong("fileBytes"));
      assertThat(read(name, WRITTEN, 100))
          .isEqualTo(java.util.Arrays.copyOf(pattern(PIECE, 7), 100));

      // Freed at the end of the file: cut off when the image closes.
      zero(name, WRITTEN, WRITTEN);
      api()
          .contentType("application/merge-patch+json")
          .body(Map.of("readOnly", true))
          .patch(IMAGES + "/" + name)
          .then()
          .statusCode(200);
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

  /**
   * With the JDK's client: RestAssured moved these 8 MiB bodies at about 4 MB/s, which made the
   * test take minutes.
   */
  @Override
  void write(String name, long offsetBytes, byte[] data) {
    HttpRequest request =
        HttpRequest.newBuilder(
                URI.create("http://127.0.0.1:" + port + IMAGES + "/" + name + "/data?flush=false"))
            .header("Content-Type", "application/octet-stream")
            .header("Content-Range", contentRange(offsetBytes, data.length))
            .PUT(HttpRequest.BodyPublishers.ofByteArray(data))
            .build();
    try {
      HttpResponse<String> response = HTTP.send(request, HttpResponse.BodyHandlers.ofString());
      assertThat(response.statusCode()).as(response.body()).isEqualTo(204);
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

  private void zero(String name, long offsetBytes, long lengthBytes) {
    api()
        .contentType("application/json")
        .body(Map.of("op", "zero", "offsetBytes", offsetBytes, "lengthBytes", lengthBytes))
        .patch(IMAGES + "/" + name + "/data")
        .then()
        .statusCode(204);
  }
}
