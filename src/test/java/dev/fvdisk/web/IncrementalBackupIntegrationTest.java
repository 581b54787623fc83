package dev.fvdisk.web;

import static org.assertj.core.api.Assertions.assertThat;
import static org.hamcrest.Matchers.contains;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.nullValue;

import io.restassured.path.json.JsonPath;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The backup a client builds from snapshots: a full copy of s1, then only the ranges {@code
 * /changes?from=s1&to=s2} lists, copied from s2, gives s2 byte for byte; the same from s2 to the
 * live image. The listed ranges are whole chunks touched in between, so the increments are small.
 * Also: paging, and the refusals.
 */
class IncrementalBackupIntegrationTest extends ApiTestSupport {

  private static final int CHUNK = 64 * 1024;

  /** The block a partial chunk version tracks: what /changes lists inside a chunk written into. */
  private static final int BLOCK = 4096;

  private static final int SIZE = 8 << 20;
  private static final HttpClient HTTP = HttpClient.newHttpClient();

  @Test
  void a_full_copy_plus_the_listed_changes_is_the_later_snapshot() throws Exception {
    String name = createImage("backup", SIZE, (long) CHUNK);
    try {
      Random random = new Random(19);
      byte[] initial = new byte[SIZE];
      random.nextBytes(initial);
      writeBulk(name, 0, initial);
      takeSnapshot(name, "s1");
      byte[] backup = getBytes(IMAGES + "/" + name + "/snapshots/s1/data", null);
      assertThat(backup).isEqualTo(initial);

      // Scattered small writes, a whole-chunk zero and a partial zero between s1 and s2. The first
      // write into a chunk after a snapshot makes a partial version, so the changes are the 4 KiB
      // blocks touched; the zeroed chunk lost its slot, and counts whole.
      BitSet touched = new BitSet();
      for (int i = 0; i < 20; i++) {
        byte[] piece = new byte[1 + random.nextInt(9000)];
        random.nextBytes(piece);
        int at = random.nextInt(SIZE - piece.length);
        writeBulk(name, at, piece);
        touched.set(at / BLOCK, (at + piece.length - 1) / BLOCK + 1);
      }
      zero(name, 5L * CHUNK, CHUNK);
      zero(name, 70L * CHUNK + 512, 4096);
      touched.set(5 * CHUNK / BLOCK, 6 * CHUNK / BLOCK);
      touched.set((70 * CHUNK + 512) / BLOCK, (70 * CHUNK + 512 + 4095) / BLOCK + 1);
      takeSnapshot(name, "s2");
      byte[] s2 = getBytes(IMAGES + "/" + name + "/snapshots/s2/data", null);

      // The snapshots' maps: s1 is data throughout; s2 reads the chunk zeroed whole as zeros.
      api()
          .get(IMAGES + "/" + name + "/snapshots/s1/map")
          .then()
          .statusCode(200)
          .body("extents.state", contains("data"))
          .body("nextOffsetBytes", nullValue());
      api()
          .get(IMAGES + "/" + name + "/snapshots/s2/map")
          .then()
          .statusCode(200)
          .body("extents.state", contains("data", "zero", "data"))
          .body("extents[1].offsetBytes", equalTo(5 * CHUNK))
          .body("extents[1].lengthBytes", equalTo(CHUNK));
      api()
          .get(
              IMAGES
                  + "/"
                  + name
                  + "/snapshots/s2/map?offsetBytes="
                  + (5 * CHUNK + 100)
                  + "&lengthBytes="
                  + SIZE)
          .then()
          .statusCode(200)
          .body("extents.state", contains("zero", "data"))
          .body("extents[0].offsetBytes", equalTo(5 * CHUNK + 100));
      api().get(IMAGES + "/" + name + "/snapshots/nope/map").then().statusCode(404);
      api()
          .get(IMAGES + "/" + name + "/snapshots/s2/map?offsetBytes=" + SIZE)
          .then()
          .statusCode(416);

      long copied = applyChanges(name, "s1", "s2", backup);
      System.out.printf(
          "IncrementalBackupIntegrationTest: s1 to s2 copied %d of %d bytes%n", copied, SIZE);
      assertThat(backup).isEqualTo(s2);
      // Exactly the blocks touched in between: the increment is no larger than it must be.
      assertThat(copied).isEqualTo((long) touched.cardinality() * BLOCK);

      // And from s2 to the live image, which moved on again.
      byte[] more = new byte[3 * CHUNK];
      random.nextBytes(more);
      writeBulk(name, 100L * CHUNK - 7, more);
      long copiedLive = applyChanges(name, "s2", null, backup);
      assertThat(backup).isEqualTo(getBytes(IMAGES + "/" + name + "/data", null));
      long firstBlock = (100L * CHUNK - 7) / BLOCK;
      long lastBlock = (100L * CHUNK - 7 + more.length - 1) / BLOCK;
      assertThat(copiedLive).isEqualTo((lastBlock - firstBlock + 1) * BLOCK);
    } finally {
      api().delete(IMAGES + "/" + name);
    }
  }

  @Test
  void pages_hold_the_configured_number_of_ranges_and_refusals_are_problems() {
    String name = createImage("backup-pages", 4L * 1000 * CHUNK, (long) CHUNK);
    try {
      takeSnapshot(name, "a");
      // 1,200 separate changed chunks: every other chunk of the first 2,400.
      for (int c = 0; c < 2400; c += 2) {
        api()
            .contentType("application/octet-stream")
            .header("Content-Range", contentRange((long) c * CHUNK, 1))
            .body(new byte[] {1})
            .put(IMAGES + "/" + name + "/data?flush=false")
            .then()
            .statusCode(204);
      }
      takeSnapshot(name, "b");
      String changes = IMAGES + "/" + name + "/changes";
      JsonPath first =
          api().get(changes + "?from=a&to=b").then().statusCode(200).extract().jsonPath();
      assertThat(first.getList("extents")).hasSize(1000);
      long next = first.getLong("nextOffsetBytes");
      assertThat(next).isEqualTo(2000L * CHUNK);
      JsonPath second =
          api()
              .get(changes + "?from=a&to=b&offsetBytes=" + next)
              .then()
              .statusCode(200)
              .extract()
              .jsonPath();
      assertThat(second.getList("extents")).hasSize(200);
      assertThat(second.getString("nextOffsetBytes")).isNull();

      raw().get(changes + "?from=b&to=a").then().statusCode(422);
      raw().get(changes + "?from=a&to=a").then().statusCode(422);
      raw().get(changes + "?from=nope").then().statusCode(404);
      raw().get(changes + "?from=a&to=nope").then().statusCode(404);
      raw().get(changes).then().statusCode(400);
      raw().get(changes + "?from=a&offsetBytes=" + 4L * 1000 * CHUNK).then().statusCode(416);
    } finally {
      api().delete(IMAGES + "/" + name);
    }
  }

  /** Copies what {@code /changes} lists from {@code to} over {@code backup}; returns the bytes. */
  private long applyChanges(String name, String from, String to, byte[] backup) throws Exception {
    String source =
        to == null
            ? IMAGES + "/" + name + "/data"
            : IMAGES + "/" + name + "/snapshots/" + to + "/data";
    List<long[]> ranges = new ArrayList<>();
    Long offset = 0L;
    while (offset != null) {
      JsonPath page =
          api()
              .get(
                  IMAGES
                      + "/"
                      + name
                      + "/changes?from="
                      + from
                      + (to == null ? "" : "&to=" + to)
                      + "&offsetBytes="
                      + offset)
              .then()
              .statusCode(200)
              .extract()
              .jsonPath();
      for (Map<String, Object> e : page.<Map<String, Object>>getList("extents")) {
        ranges.add(
            new long[] {
              ((Number) e.get("offsetBytes")).longValue(),
              ((Number) e.get("lengthBytes")).longValue()
            });
      }
      Object next = page.get("nextOffsetBytes");
      offset = next == null ? null : ((Number) next).longValue();
    }
    long copied = 0;
    for (long[] r : ranges) {
      byte[] piece = getBytes(source, "bytes=" + r[0] + "-" + (r[0] + r[1] - 1));
      System.arraycopy(piece, 0, backup, (int) r[0], piece.length);
      copied += r[1];
    }
    return copied;
  }

  private byte[] getBytes(String path, String range) throws Exception {
    HttpRequest.Builder request =
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path));
    if (range != null) {
      request.header("Range", range);
    }
    HttpResponse<byte[]> answer =
        HTTP.send(request.build(), HttpResponse.BodyHandlers.ofByteArray());
    assertThat(answer.statusCode()).as("GET %s %s", path, range).isIn(200, 206);
    return answer.body();
  }
}
