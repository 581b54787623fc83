package dev.fvdisk.web;

import static org.assertj.core.api.Assertions.assertThat;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.greaterThan;
import static org.hamcrest.Matchers.notNullValue;

import io.restassured.response.Response;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Snapshots over HTTP: taking, listing, reading (whole, ranges, {@code HEAD}, digests) and deleting
 * them while the image changes underneath, and every refusal answering a problem that changes
 * nothing. MiB bodies go through the JDK's client, which does not buffer them twice as REST Assured
 * does.
 */
class SnapshotIntegrationTest extends ApiTestSupport {

  private static final long CHUNK = MIB;
  private static final int SIZE = (int) (4 * MIB);
  private static final HttpClient HTTP = HttpClient.newHttpClient();

  @Test
  void snapshots_keep_what_was_written_before_them_while_the_image_moves_on() throws Exception {
    String name = createImage("snap", SIZE, CHUNK);
    byte[] v1 = pattern(SIZE, 1);
    write(name, 0, v1);

    Response taken =
        api()
            .contentType("application/json")
            .body(Map.of("name", "s1"))
            .post(snapshots(name))
            .then()
            .statusCode(201)
            .header("Location", equalTo(snapshots(name) + "/s1"))
            .body("name", equalTo("s1"))
            .body("sizeBytes", equalTo(SIZE))
            .body("usedBytes", equalTo(0))
            .body("createdAt", notNullValue())
            .extract()
            .response();
    String createdAt = taken.path("createdAt");

    // Part of chunk 1 overwritten, chunk 2 zeroed whole: s1 must keep both old versions.
    byte[] v2 = v1.clone();
    byte[] partial = pattern(65536, 2);
    write(name, CHUNK + 4096, partial);
    System.arraycopy(partial, 0, v2, (int) CHUNK + 4096, partial.length);
    zero(name, 2 * CHUNK, CHUNK);
    Arrays.fill(v2, (int) (2 * CHUNK), (int) (3 * CHUNK), (byte) 0);
    takeSnapshot(name, "s2");

    byte[] v3 = v2.clone();
    byte[] head = pattern(512 * 1024, 3);
    write(name, 0, head);
    System.arraycopy(head, 0, v3, 0, head.length);
    byte[] intoZeroed = pattern(1000, 4);
    write(name, 2 * CHUNK + 100, intoZeroed);
    System.arraycopy(intoZeroed, 0, v3, (int) (2 * CHUNK) + 100, intoZeroed.length);

    assertThat(get(snapshotData(name, "s1"), null).body()).isEqualTo(v1);
    assertThat(get(snapshotData(name, "s2"), null).body()).isEqualTo(v2);
    assertThat(get(IMAGES + "/" + name + "/data", null).body()).isEqualTo(v3);
    assertRange(name, "s1", v1, CHUNK, 2 * CHUNK - 1);
    assertRange(name, "s2", v2, CHUNK + CHUNK / 2, 2 * CHUNK + CHUNK / 2 - 1);
    assertRange(name, "s2", v2, 0, 511);
    HttpResponse<byte[]> suffix = get(snapshotData(name, "s1"), "bytes=-1000");
    assertThat(suffix.statusCode()).isEqualTo(206);
    assertThat(suffix.headers().firstValue("Content-Range"))
        .hasValue("bytes " + (SIZE - 1000) + "-" + (SIZE - 1) + "/" + SIZE);
    assertThat(suffix.body()).isEqualTo(Arrays.copyOfRange(v1, SIZE - 1000, SIZE));

    List<Map<String, Object>> listed =
        api().get(snapshots(name)).then().statusCode(200).extract().path("snapshots");
    assertThat(listed).extracting(s -> s.get("name")).containsExactly("s1", "s2");
    assertThat(listed.get(0).get("createdAt")).isEqualTo(createdAt);
    assertThat(((Number) listed.get(0).get("usedBytes")).longValue())
        .as("s1 alone holds the old chunks 1 and 2")
        .isGreaterThanOrEqualTo(2 * CHUNK);
    api()
        .get(snapshots(name) + "/s2")
        .then()
        .statusCode(200)
        .body("name", equalTo("s2"))
        .body("sizeBytes", equalTo(SIZE));
    api()
        .get(IMAGES + "/" + name)
        .then()
        .statusCode(200)
        .body("snapshotCount", equalTo(2))
        .body("storage.snapshotBytes", greaterThan(0));

    // One entity tag per snapshot, the same for HEAD and GET, unmoved by writes to the image.
    String s1Tag =
        api()
            .head(snapshotData(name, "s1"))
            .then()
            .statusCode(200)
            .header("Content-Length", equalTo(String.valueOf(SIZE)))
            .header("Accept-Ranges", equalTo("bytes"))
            .header("ETag", notNullValue())
            .extract()
            .header("ETag");
    assertThat(get(snapshotData(name, "s1"), null).headers().firstValue("ETag")).hasValue(s1Tag);
    String s2Tag = get(snapshotData(name, "s2"), "bytes=0-0").headers().firstValue("ETag").get();
    assertThat(s2Tag).isNotEqualTo(s1Tag).isNotEqualTo(etag(name));
    write(name, 0, pattern(4096, 5));
    assertThat(api().head(snapshotData(name, "s1")).header("ETag")).isEqualTo(s1Tag);

    // A snapshot keeps its size when the image grows: past it is 416, as past a disk's end.
    api()
        .contentType("application/merge-patch+json")
        .body(Map.of("sizeBytes", 2 * SIZE))
        .patch(IMAGES + "/" + name)
        .then()
        .statusCode(200);
    api()
        .header("Range", "bytes=" + SIZE + "-")
        .get(snapshotData(name, "s1"))
        .then()
        .statusCode(416)
        .contentType("application/problem+json")
        .header("Content-Range", equalTo("bytes */" + SIZE))
        .body("type", equalTo(PROBLEMS + "range-not-satisfiable"));
    api()
        .head(snapshotData(name, "s2"))
        .then()
        .header("Content-Length", equalTo(String.valueOf(SIZE)));

    api().delete(snapshots(name) + "/s1").then().statusCode(204);
    api()
        .get(snapshots(name) + "/s1")
        .then()
        .statusCode(404)
        .contentType("application/problem+json")
        .body("type", equalTo(PROBLEMS + "snapshot-not-found"))
        .body("image", equalTo(name))
        .body("snapshot", equalTo("s1"));
    api()
        .header("Range", "bytes=0-511")
        .get(snapshotData(name, "s1"))
        .then()
        .statusCode(404)
        .body("type", equalTo(PROBLEMS + "snapshot-not-found"));
    assertThat(get(snapshotData(name, "s2"), null).body()).isEqualTo(v2);
    List<String> left =
        api().get(snapshots(name)).then().statusCode(200).extract().path("snapshots.name");
    assertThat(left).containsExactly("s2");
  }

  @Test
  void a_snapshot_read_can_carry_a_content_digest() throws Exception {
    String name = createImage("snap-digest", 2 * MIB, 65536L);
    byte[] data = pattern((int) MIB, 6);
    write(name, 0, data);
    takeSnapshot(name, "d");
    write(name, 0, pattern((int) MIB, 7));
    HttpRequest request =
        HttpRequest.newBuilder(URI.create(url(snapshotData(name, "d"))))
            .header("Range", "bytes=0-" + (MIB - 1))
            .header("Want-Content-Digest", "sha-256=1")
            .build();
    HttpResponse<byte[]> answer = HTTP.send(request, HttpResponse.BodyHandlers.ofByteArray());
    assertThat(answer.statusCode()).isEqualTo(206);
    assertThat(answer.body()).isEqualTo(data);
    String sha256 =
        Base64.getEncoder().encodeToString(MessageDigest.getInstance("SHA-256").digest(data));
    assertThat(answer.headers().firstValue("Content-Digest")).hasValue("sha-256=:" + sha256 + ":");
  }

  @Test
  void refusals_are_problems_and_change_nothing() {
    String name = createImage("snap-refused", MIB, 65536L);
    write(name, 0, pattern(70000, 8));
    takeSnapshot(name, "kept");
    State before = state(name);

    raw()
        .contentType("application/json")
        .body("{\"name\":\"Not Valid\"}")
        .post(snapshots(name))
        .then()
        .statusCode(422)
        .contentType("application/problem+json")
        .body("type", equalTo(PROBLEMS + "invalid-value"))
        .body("detail", containsString("Not Valid"));
    raw()
        .contentType("application/json")
        .body("{\"name\":\"..\"}")
        .post(snapshots(name))
        .then()
        .statusCode(422)
        .body("type", equalTo(PROBLEMS + "invalid-value"));
    raw()
        .contentType("application/json")
        .body("{}")
        .post(snapshots(name))
        .then()
        .statusCode(400)
        .contentType("application/problem+json")
        .body("type", equalTo(PROBLEMS + "bad-request"));
    api()
        .contentType("application/json")
        .body(Map.of("name", "kept"))
        .post(snapshots(name))
        .then()
        .statusCode(409)
        .contentType("application/problem+json")
        .body("type", equalTo(PROBLEMS + "snapshot-exists"))
        .body("title", equalTo("Snapshot already exists"))
        .body("snapshot", equalTo("kept"));
    String missing = uniqueName("missing");
    api()
        .contentType("application/json")
        .body(Map.of("name", "s"))
        .post(snapshots(missing))
        .then()
        .statusCode(404)
        .contentType("application/problem+json")
        .body("type", equalTo(PROBLEMS + "image-not-found"));
    api()
        .get(snapshots(missing))
        .then()
        .statusCode(404)
        .body("type", equalTo(PROBLEMS + "image-not-found"));
    for (String absent : List.of("nope", "Not%20Valid")) {
      raw()
          .get(snapshots(name) + "/" + absent)
          .then()
          .statusCode(404)
          .contentType("application/problem+json")
          .body("type", equalTo(PROBLEMS + "snapshot-not-found"));
      raw()
          .delete(snapshots(name) + "/" + absent)
          .then()
          .statusCode(404)
          .body("type", equalTo(PROBLEMS + "snapshot-not-found"));
      raw()
          .get(snapshotData(name, absent))
          .then()
          .statusCode(404)
          .body("type", equalTo(PROBLEMS + "snapshot-not-found"));
      raw().head(snapshotData(name, absent)).then().statusCode(404);
    }
    assertThat(state(name)).isEqualTo(before);

    // Marked read-only: neither taking nor deleting, while reading goes on.
    markReadOnly(name);
    api()
        .contentType("application/json")
        .body(Map.of("name", "another"))
        .post(snapshots(name))
        .then()
        .statusCode(409)
        .contentType("application/problem+json")
        .body("type", equalTo(PROBLEMS + "image-read-only"));
    api()
        .delete(snapshots(name) + "/kept")
        .then()
        .statusCode(409)
        .body("type", equalTo(PROBLEMS + "image-read-only"));
    assertThat(state(name)).isEqualTo(before);
    api()
        .contentType("application/merge-patch+json")
        .body(Map.of("readOnly", false))
        .patch(IMAGES + "/" + name)
        .then()
        .statusCode(200);
    assertThat(state(name)).isEqualTo(before);
  }

  @Test
  void a_clone_that_still_reads_its_base_takes_snapshots_that_go_on_reading_it() throws Exception {
    String base = createImage("snap-base", MIB, 65536L);
    byte[] baseBytes = pattern((int) MIB, 9);
    write(base, 0, baseBytes);
    markReadOnly(base);
    String clone = uniqueName("snap-clone");
    api()
        .contentType("application/json")
        .body(Map.of("name", clone, "base", base, "copyOnRead", true))
        .post(IMAGES)
        .then()
        .statusCode(201);
    byte[] expected = baseBytes.clone();
    byte[] early = pattern(512, 10);
    write(clone, 8192, early);
    System.arraycopy(early, 0, expected, 8192, early.length);
    api()
        .contentType("application/json")
        .body(Map.of("name", "s1"))
        .post(snapshots(clone))
        .then()
        .statusCode(201)
        .body("usedBytes", greaterThan(0)); // the copy of the clone's block bitmap

    // Copy-on-read brings every block into the clone, then a write changes its first half.
    assertThat(read(clone, 0, MIB)).isEqualTo(expected);
    write(clone, 0, pattern((int) MIB / 2, 11));
    assertRange(clone, "s1", expected, 0, MIB - 1);

    // Only the client's write is a change since s1; the copies copy-on-read made are not.
    api()
        .get(IMAGES + "/" + clone + "/changes?from=s1")
        .then()
        .statusCode(200)
        .body("extents.offsetBytes", equalTo(List.of(0)))
        .body("extents.lengthBytes", equalTo(List.of((int) MIB / 2)))
        .body("nextOffsetBytes", equalTo(null));
    api()
        .get(IMAGES + "/" + clone + "/snapshots/s1/map")
        .then()
        .statusCode(200)
        .body("extents.state", equalTo(List.of("data", "base")));

    // A clone of that snapshot reads through it, and so through the first clone's base.
    String grandchild = uniqueName("snap-grandchild");
    api()
        .contentType("application/json")
        .body(Map.of("name", grandchild, "base", clone + "@s1"))
        .post(IMAGES)
        .then()
        .statusCode(201);
    assertThat(read(grandchild, 0, MIB)).isEqualTo(expected);
    api()
        .delete(snapshots(clone) + "/s1")
        .then()
        .statusCode(409)
        .body("type", equalTo(PROBLEMS + "snapshot-in-use"));
    api().delete(IMAGES + "/" + grandchild).then().statusCode(204);
    api().delete(snapshots(clone) + "/s1").then().statusCode(204);
  }

  @Test
  void the_two_hundred_and_fifty_sixth_snapshot_is_refused() {
    String name = createImage("snap-limit", 65536, 65536L);
    for (int i = 0; i < 255; i++) {
      raw()
          .contentType("application/json")
          .body("{\"name\":\"s" + i + "\"}")
          .post(snapshots(name))
          .then()
          .statusCode(201);
    }
    api()
        .contentType("application/json")
        .body(Map.of("name", "one-more"))
        .post(snapshots(name))
        .then()
        .statusCode(409)
        .contentType("application/problem+json")
        .body("type", equalTo(PROBLEMS + "snapshot-limit"))
        .body("maxSnapshots", equalTo(255))
        .body("detail", containsString("255"));
    api().get(IMAGES + "/" + name).then().body("snapshotCount", equalTo(255));
    // Deleting one, any one, makes room again.
    api().delete(snapshots(name) + "/s100").then().statusCode(204);
    takeSnapshot(name, "one-more");
  }

  private static final String PROBLEMS = "https://fvdisk.dev/problems/";

  /** What a refusal must leave alone: the image's bytes and its snapshots. */
  private record State(String checksum, List<Object> snapshots) {}

  private State state(String name) {
    return new State(
        checksum(name),
        api().get(snapshots(name)).then().statusCode(200).extract().path("snapshots"));
  }

  private void assertRange(String name, String snapshot, byte[] expected, long first, long last)
      throws Exception {
    HttpResponse<byte[]> answer = get(snapshotData(name, snapshot), "bytes=" + first + "-" + last);
    assertThat(answer.statusCode()).isEqualTo(206);
    assertThat(answer.headers().firstValue("Content-Length"))
        .hasValue(String.valueOf(last - first + 1));
    assertThat(answer.body())
        .as("%s bytes %d-%d", snapshot, first, last)
        .isEqualTo(Arrays.copyOfRange(expected, (int) first, (int) last + 1));
  }

  private HttpResponse<byte[]> get(String path, String range) throws Exception {
    HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(url(path)));
    if (range != null) {
      request.header("Range", range);
    }
    HttpResponse<byte[]> answer =
        HTTP.send(request.build(), HttpResponse.BodyHandlers.ofByteArray());
    assertThat(answer.statusCode()).as("GET %s %s", path, range).isIn(200, 206);
    return answer;
  }

  private String url(String path) {
    return "http://localhost:" + port + path;
  }

  private static String snapshots(String name) {
    return IMAGES + "/" + name + "/snapshots";
  }

  private static String snapshotData(String name, String snapshot) {
    return snapshots(name) + "/" + snapshot + "/data";
  }
}
