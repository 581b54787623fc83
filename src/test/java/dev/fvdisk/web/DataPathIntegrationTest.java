package dev.fvdisk.web;

import static org.assertj.core.api.Assertions.assertThat;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.notNullValue;
import static org.hamcrest.Matchers.nullValue;

import dev.fvdisk.engine.Image;
import dev.fvdisk.engine.Images;
import io.restassured.specification.RequestSpecification;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.DisabledIfEnvironmentVariable;

class DataPathIntegrationTest extends ApiTestSupport {

  private static final long CHUNK = 65536;

  private String data(String name) {
    return IMAGES + "/" + name + "/data";
  }

  @Test
  void head_gives_size_accept_ranges_and_etag() {
    String name = createImage("head", 3 * MIB);
    api()
        .head(data(name))
        .then()
        .statusCode(200)
        .header("Content-Length", String.valueOf(3 * MIB))
        .header("Accept-Ranges", "bytes")
        .header("ETag", notNullValue());
  }

  @Test
  void reads_carry_the_security_headers_although_their_body_bypasses_the_response_wrappers() {
    // Read bodies go to the container's own stream, from DataController and from RangeReadFilter
    // alike; Spring Security's header writer must therefore have written its headers before.
    String name = createImage("headers", MIB, CHUNK);
    byte[] content = pattern((int) MIB, 4);
    write(name, 0, content);
    String sectors = IMAGES + "/" + name + "/sectors/0?count=2048";
    for (HeaderedRead read :
        List.of(
            new HeaderedRead(data(name), "bytes=0-" + (MIB - 1), 206), // RangeReadFilter
            new HeaderedRead(data(name), null, 200), // DataController
            new HeaderedRead(sectors, null, 200))) {
      RequestSpecification request = api();
      if (read.range() != null) {
        request.header("Range", read.range());
      }
      byte[] body =
          request
              .get(read.path())
              .then()
              .statusCode(read.status())
              .header("X-Content-Type-Options", "nosniff")
              .header("Cache-Control", notNullValue())
              .header("X-Frame-Options", "DENY")
              .extract()
              .asByteArray();
      assertThat(body).as(read.toString()).isEqualTo(content);
    }
  }

  private record HeaderedRead(String path, String range, int status) {}

  @Test
  void get_without_range_streams_the_whole_disk_with_zeros_where_never_written() {
    String name = createImage("whole", MIB, CHUNK);
    byte[] written = pattern(3000, 5);
    write(name, 70000, written);
    byte[] all =
        api()
            .get(data(name))
            .then()
            .statusCode(200)
            .header("Content-Length", String.valueOf(MIB))
            .header("Accept-Ranges", "bytes")
            .extract()
            .asByteArray();
    byte[] expected = new byte[(int) MIB];
    System.arraycopy(written, 0, expected, 70000, written.length);
    assertThat(all).isEqualTo(expected);
  }

  @Test
  void ranges_closed_open_suffix_and_clipped() {
    String name = createImage("ranges", MIB, CHUNK);
    byte[] content = pattern((int) MIB, 9);
    write(name, 0, content);
    rangeIs(name, "bytes=10-19", 10, 19, Arrays.copyOfRange(content, 10, 20));
    rangeIs(
        name, "bytes=1048000-", 1048000, MIB - 1, Arrays.copyOfRange(content, 1048000, (int) MIB));
    rangeIs(
        name,
        "bytes=-100",
        MIB - 100,
        MIB - 1,
        Arrays.copyOfRange(content, (int) MIB - 100, (int) MIB));
    rangeIs(
        name,
        "bytes=1048500-99999999",
        1048500,
        MIB - 1,
        Arrays.copyOfRange(content, 1048500, (int) MIB));
    rangeIs(name, "bytes=-5000000", 0, MIB - 1, content);
    rangeIs(name, "bytes=0-0", 0, 0, new byte[] {content[0]});
  }

  private void rangeIs(String name, String range, long first, long last, byte[] expected) {
    byte[] body =
        api()
            .header("Range", range)
            .get(data(name))
            .then()
            .statusCode(206)
            .header("Content-Range", "bytes " + first + "-" + last + "/" + MIB)
            .header("Content-Length", String.valueOf(last - first + 1))
            .extract()
            .asByteArray();
    assertThat(body).as(range).isEqualTo(expected);
  }

  @Test
  void unsatisfiable_ranges_are_416_with_the_disk_size() {
    String name = createImage("r416", MIB);
    for (String range :
        List.of(
            "bytes=1048576-",
            "bytes=2000000-2000010",
            "bytes=0-1,5-9",
            "bytes=20-10",
            "bytes=-0")) {
      // raw(): several ranges break the contract's one-range pattern on purpose.
      raw()
          .header("Range", range)
          .get(data(name))
          .then()
          .statusCode(416)
          .header("Content-Range", "bytes */" + MIB)
          .contentType("application/problem+json")
          .body("type", equalTo("https://fvdisk.dev/problems/range-not-satisfiable"))
          .body("sizeBytes", equalTo((int) MIB));
    }
  }

  @Test
  void unaligned_writes_straddling_chunks_read_back_exactly() {
    String name = createImage("straddle", MIB, CHUNK);
    byte[] data = pattern((int) (2 * CHUNK + 777), 3);
    long offset = CHUNK - 333;
    write(name, offset, data);
    assertThat(read(name, offset, data.length)).isEqualTo(data);
    assertThat(read(name, offset - 100, 100)).isEqualTo(new byte[100]);
    assertThat(read(name, offset + data.length, 100)).isEqualTo(new byte[100]);
  }

  @Test
  void put_without_content_range_writes_at_offset_zero() {
    String name = createImage("put0", MIB);
    byte[] data = pattern(1234, 4);
    api()
        .contentType("application/octet-stream")
        .body(data)
        .put(data(name))
        .then()
        .statusCode(204)
        .header("ETag", notNullValue());
    assertThat(read(name, 0, 1234)).isEqualTo(data);
  }

  @Test
  void put_with_complete_length_of_the_disk_is_accepted() {
    String name = createImage("putsize", MIB);
    api()
        .contentType("application/octet-stream")
        .header("Content-Range", "bytes 512-1023/" + MIB)
        .body(pattern(512, 1))
        .put(data(name))
        .then()
        .statusCode(204);
    assertThat(read(name, 512, 512)).isEqualTo(pattern(512, 1));
  }

  @Test
  void put_rules_400_411_416_and_nothing_written() {
    String name = createImage("putbad", MIB);
    write(name, 0, pattern(4096, 7));
    String before = checksum(name);
    api()
        .contentType("application/octet-stream")
        .header("Content-Range", "bytes 0-99/*")
        .body(new byte[50])
        .put(data(name))
        .then()
        .statusCode(400)
        .body("type", equalTo("https://fvdisk.dev/problems/bad-request"));
    api()
        .contentType("application/octet-stream")
        .header("Content-Range", "bytes " + (MIB - 10) + "-" + (MIB + 9) + "/*")
        .body(new byte[20])
        .put(data(name))
        .then()
        .statusCode(416)
        .header("Content-Range", "bytes */" + MIB);
    api()
        .contentType("application/octet-stream")
        .header("Content-Range", "bytes 0-9/" + (2 * MIB))
        .body(new byte[10])
        .put(data(name))
        .then()
        .statusCode(416);
    assertThat(checksum(name)).isEqualTo(before);
  }

  @Test
  void zero_makes_a_range_read_zeros_allocating_nothing_and_frees_whole_chunks() {
    String name = createImage("zero", MIB, CHUNK);
    write(name, 0, pattern((int) (2 * CHUNK), 1));
    long usedBefore =
        api().get(IMAGES + "/" + name).then().extract().jsonPath().getLong("storage.usedBytes");
    api()
        .contentType("application/json")
        .body(Map.of("op", "zero", "offsetBytes", 100, "lengthBytes", 3 * CHUNK))
        .patch(data(name))
        .then()
        .statusCode(204);
    assertThat(read(name, 0, 100)).isEqualTo(Arrays.copyOf(pattern((int) (2 * CHUNK), 1), 100));
    assertThat(read(name, 100, 3 * CHUNK)).isEqualTo(new byte[(int) (3 * CHUNK)]);
    // Chunk 1 was covered whole and gave its space back; chunk 0 keeps its first 100 bytes.
    api()
        .get(IMAGES + "/" + name)
        .then()
        .body("storage.usedBytes", equalTo((int) (usedBefore - CHUNK)));
  }

  @Test
  void zero_outside_the_disk_is_416() {
    String name = createImage("zero416", MIB);
    api()
        .contentType("application/json")
        .body(Map.of("op", "zero", "offsetBytes", MIB - 10, "lengthBytes", 20))
        .patch(data(name))
        .then()
        .statusCode(416);
  }

  @Test
  @DisabledIfEnvironmentVariable(
      named = "FVDISK_STORAGE_BACKEND",
      matches = "(?i)s3",
      disabledReason =
          "reads the image file; on a bucket, BucketBackendIntegrationTest and the kill tests check durability")
  void write_with_flush_false_becomes_durable_at_the_flush_operation() throws Exception {
    String name = createImage("durable", MIB, CHUNK);
    byte[] data = pattern(1000, 8);
    api()
        .contentType("application/octet-stream")
        .header("Content-Range", contentRange(3 * CHUNK + 10, data.length))
        .queryParam("flush", false)
        .body(data)
        .put(data(name))
        .then()
        .statusCode(204);
    // A second, independent open sees only what reached the file: the chunk's mapping is not
    // journalled yet, so the range still reads as zeros there.
    assertThat(readFromFile(name, 3 * CHUNK + 10, data.length)).isEqualTo(new byte[1000]);
    api()
        .contentType("application/json")
        .body(Map.of("op", "flush"))
        .patch(data(name))
        .then()
        .statusCode(204);
    assertThat(readFromFile(name, 3 * CHUNK + 10, data.length)).isEqualTo(data);
  }

  @Test
  @DisabledIfEnvironmentVariable(
      named = "FVDISK_STORAGE_BACKEND",
      matches = "(?i)s3",
      disabledReason =
          "reads the image file; on a bucket, BucketBackendIntegrationTest and the kill tests check durability")
  void write_without_flush_false_is_durable_on_answer() throws Exception {
    String name = createImage("durable2", MIB, CHUNK);
    byte[] data = pattern(700, 2);
    write(name, 5 * CHUNK - 300, data);
    assertThat(readFromFile(name, 5 * CHUNK - 300, data.length)).isEqualTo(data);
  }

  /** Reads through a separate read-only open, which recovers from the file's journal alone. */
  private static byte[] readFromFile(String name, long offset, int length) throws Exception {
    try (Image image = Images.open(DATA_DIR.resolve(name + ".fvd"), false)) {
      ByteBuffer buffer = ByteBuffer.allocate(length);
      image.read(offset, buffer);
      return buffer.array();
    }
  }

  @Test
  void if_match_guards_data_writes() {
    String name = createImage("ifmatch", MIB);
    String etag = etag(name);
    String next =
        api()
            .contentType("application/octet-stream")
            .header("If-Match", etag)
            .body(pattern(512, 1))
            .put(data(name))
            .then()
            .statusCode(204)
            .extract()
            .header("ETag");
    assertThat(next).isNotEqualTo(etag);
    api()
        .contentType("application/octet-stream")
        .header("If-Match", etag)
        .body(pattern(512, 2))
        .put(data(name))
        .then()
        .statusCode(412)
        .body("type", equalTo("https://fvdisk.dev/problems/precondition-failed"));
    api()
        .contentType("application/json")
        .header("If-Match", etag)
        .body(Map.of("op", "zero", "offsetBytes", 0, "lengthBytes", 512))
        .patch(data(name))
        .then()
        .statusCode(412);
    api()
        .contentType("application/octet-stream")
        .header("If-Match", "*")
        .body(pattern(512, 3))
        .put(IMAGES + "/" + name + "/sectors/1")
        .then()
        .statusCode(204);
    assertThat(read(name, 0, 1024)).isEqualTo(concat(pattern(512, 1), pattern(512, 3)));
  }

  @Test
  void options_lists_methods_and_features() {
    String name = createImage("options", MIB);
    api()
        .options(data(name))
        .then()
        .statusCode(200)
        .header("Allow", "OPTIONS, HEAD, GET, PUT, PATCH")
        .body("features", equalTo(List.of("zero", "flush", "extents", "sectors")))
        .body("maxWriteBytes", nullValue());
  }

  @Test
  void sectors_round_trip_and_reject_bad_lengths_and_ranges() {
    String name = createImage("sectors", MIB);
    byte[] two = pattern(1024, 6);
    api()
        .contentType("application/octet-stream")
        .body(two)
        .put(IMAGES + "/" + name + "/sectors/10")
        .then()
        .statusCode(204);
    byte[] back =
        api()
            .queryParam("count", 3)
            .get(IMAGES + "/" + name + "/sectors/10")
            .then()
            .statusCode(200)
            .header("Content-Length", "1536")
            .extract()
            .asByteArray();
    assertThat(back).isEqualTo(concat(two, new byte[512]));
    assertThat(read(name, 5120, 1024)).isEqualTo(two);
    api()
        .contentType("application/octet-stream")
        .body(new byte[700])
        .put(IMAGES + "/" + name + "/sectors/0")
        .then()
        .statusCode(422)
        .body("type", equalTo("https://fvdisk.dev/problems/unaligned-data"))
        .body("lengthBytes", equalTo(700));
    api()
        .queryParam("count", 2)
        .get(IMAGES + "/" + name + "/sectors/2047")
        .then()
        .statusCode(416)
        .header("Content-Range", "bytes */" + MIB);
    // raw(): the contract says count >= 1; this checks the server says so too.
    raw().queryParam("count", 0).get(IMAGES + "/" + name + "/sectors/0").then().statusCode(422);
    api()
        .contentType("application/octet-stream")
        .body(new byte[1024])
        .put(IMAGES + "/" + name + "/sectors/2047")
        .then()
        .statusCode(416);
  }

  @Test
  void map_lists_merged_extents_and_pages() {
    String name = createImage("map", 2 * MIB, CHUNK);
    write(name, CHUNK + 5, new byte[] {1});
    write(name, 2 * CHUNK, new byte[] {1});
    api()
        .get(IMAGES + "/" + name + "/map")
        .then()
        .statusCode(200)
        .body("extents.size()", equalTo(3))
        .body("extents[0].state", equalTo("zero"))
        .body("extents[1].offsetBytes", equalTo((int) CHUNK))
        .body("extents[1].lengthBytes", equalTo((int) (2 * CHUNK)))
        .body("extents[1].state", equalTo("data"))
        .body("extents[2].state", equalTo("zero"))
        .body("nextOffsetBytes", nullValue());
    api()
        .queryParam("offsetBytes", CHUNK + 100)
        .queryParam("lengthBytes", 100)
        .get(IMAGES + "/" + name + "/map")
        .then()
        .statusCode(200)
        .body("extents.size()", equalTo(1))
        .body("extents[0].offsetBytes", equalTo((int) CHUNK + 100))
        .body("extents[0].lengthBytes", equalTo(100));
    api()
        .queryParam("offsetBytes", 2 * MIB)
        .get(IMAGES + "/" + name + "/map")
        .then()
        .statusCode(416);
  }

  @Test
  void chunked_body_takes_its_length_from_content_range_and_without_it_is_411() throws Exception {
    String name = createImage("chunked", MIB);
    HttpClient client = HttpClient.newHttpClient();
    byte[] body = pattern(5000, 4);
    // A body publisher without a length is sent with chunked transfer coding: no Content-Length.
    HttpRequest.BodyPublisher chunked =
        HttpRequest.BodyPublishers.ofInputStream(() -> new java.io.ByteArrayInputStream(body));
    HttpRequest withRange =
        HttpRequest.newBuilder(URI.create("http://localhost:" + port + data(name)))
            .header("Content-Type", "application/octet-stream")
            .header("Content-Range", contentRange(777, body.length))
            .PUT(chunked)
            .build();
    assertThat(client.send(withRange, HttpResponse.BodyHandlers.ofString()).statusCode())
        .isEqualTo(204);
    assertThat(read(name, 777, body.length)).isEqualTo(body);
    HttpRequest withoutRange =
        HttpRequest.newBuilder(URI.create("http://localhost:" + port + data(name)))
            .header("Content-Type", "application/octet-stream")
            .PUT(chunked)
            .build();
    HttpResponse<String> refused = client.send(withoutRange, HttpResponse.BodyHandlers.ofString());
    assertThat(refused.statusCode()).isEqualTo(411);
    assertThat(refused.headers().firstValue("Content-Type")).hasValue("application/problem+json");
    assertThat(refused.body()).contains("https://fvdisk.dev/problems/length-required");
    assertThat(read(name, 0, 777)).isEqualTo(new byte[777]);
  }

  @Test
  void concurrent_writes_flushes_and_conditional_changes_all_land() throws Exception {
    String name = createImage("concurrent", 4 * MIB, CHUNK);
    HttpClient client = HttpClient.newHttpClient();
    URI uri = URI.create("http://localhost:" + port + data(name));
    int writers = 8;
    int writesEach = 6;
    var pool = java.util.concurrent.Executors.newFixedThreadPool(writers);
    try {
      List<java.util.concurrent.Future<Integer>> results = new ArrayList<>();
      for (int w = 0; w < writers; w++) {
        int writer = w;
        results.add(
            pool.submit(
                () -> {
                  int ok = 0;
                  for (int i = 0; i < writesEach; i++) {
                    long offset = (writer * writesEach + i) * 70000L;
                    HttpRequest put =
                        HttpRequest.newBuilder(uri)
                            .header("Content-Type", "application/octet-stream")
                            .header("Content-Range", contentRange(offset, 70000))
                            .PUT(
                                HttpRequest.BodyPublishers.ofByteArray(
                                    pattern(70000, writer * writesEach + i)))
                            .build();
                    if (client.send(put, HttpResponse.BodyHandlers.discarding()).statusCode()
                        == 204) {
                      ok++;
                    }
                  }
                  return ok;
                }));
      }
      // Conditional changes race with the writers: each either lands or gets 412, never hangs.
      for (int i = 0; i < 5; i++) {
        String etag = etag(name);
        int status =
            api()
                .contentType("application/json")
                .header("If-Match", etag)
                .body(Map.of("op", "flush"))
                .patch(data(name))
                .then()
                .extract()
                .statusCode();
        assertThat(status).isIn(204, 412);
      }
      for (var result : results) {
        assertThat(result.get(60, java.util.concurrent.TimeUnit.SECONDS)).isEqualTo(writesEach);
      }
    } finally {
      pool.shutdownNow();
    }
    for (int k = 0; k < writers * writesEach; k++) {
      assertThat(read(name, k * 70000L, 70000)).as("write " + k).isEqualTo(pattern(70000, k));
    }
  }

  @Test
  void map_pages_hold_1000_extents_and_say_where_to_continue() throws Exception {
    String name = createImage("mappage", 8 * MIB, 4096L);
    // 1001 one-byte writes, every other 4 KiB chunk: 2002 extents. A plain client keeps this fast.
    HttpClient client = HttpClient.newHttpClient();
    URI uri = URI.create("http://localhost:" + port + data(name) + "?flush=false");
    for (int i = 0; i < 1001; i++) {
      HttpRequest put =
          HttpRequest.newBuilder(uri)
              .header("Content-Type", "application/octet-stream")
              .header("Content-Range", contentRange(i * 8192L, 1))
              .PUT(HttpRequest.BodyPublishers.ofByteArray(new byte[] {1}))
              .build();
      assertThat(client.send(put, HttpResponse.BodyHandlers.discarding()).statusCode())
          .isEqualTo(204);
    }
    List<Long> pageSizes = new ArrayList<>();
    long expectedOffset = 0;
    Long next = 0L;
    while (next != null) {
      var page =
          api()
              .queryParam("offsetBytes", next)
              .get(IMAGES + "/" + name + "/map")
              .then()
              .statusCode(200)
              .extract()
              .jsonPath();
      List<Map<String, Object>> extents = page.getList("extents");
      pageSizes.add((long) extents.size());
      for (Map<String, Object> extent : extents) {
        assertThat(((Number) extent.get("offsetBytes")).longValue()).isEqualTo(expectedOffset);
        expectedOffset += ((Number) extent.get("lengthBytes")).longValue();
      }
      next = page.get("nextOffsetBytes") == null ? null : page.getLong("nextOffsetBytes");
    }
    assertThat(pageSizes).containsExactly(1000L, 1000L, 2L);
    assertThat(expectedOffset).isEqualTo(8 * MIB);
  }

  private static byte[] concat(byte[] a, byte[] b) {
    byte[] c = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, c, a.length, b.length);
    return c;
  }
}
