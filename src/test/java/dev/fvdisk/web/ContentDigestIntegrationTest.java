package dev.fvdisk.web;

import static org.assertj.core.api.Assertions.assertThat;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;

import dev.fvdisk.testing.RawHttp;
import io.restassured.response.ExtractableResponse;
import io.restassured.response.Response;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.springframework.boot.test.system.CapturedOutput;
import org.springframework.boot.test.system.OutputCaptureExtension;

/**
 * {@code Content-Digest} (RFC 9530) on the data path of a real server. Reads that send {@code
 * Want-Content-Digest} get the digest of exactly the body they receive, whole disk, range or
 * sectors; reads that want nothing we support, and {@code HEAD}, get none. Writes that send {@code
 * Content-Digest} are checked before anything is written, both when the body waits in the request's
 * buffer (4 KiB) and when it waits in a staging file (3 MiB, above the 1 MiB buffer): a mismatch is
 * a 400 {@code digest-mismatch} that leaves the image as it was, and no staged file outlives its
 * request. Multi-MiB bodies go through the JDK's client, which moves them far faster than REST
 * Assured.
 */
@ExtendWith(OutputCaptureExtension.class)
class ContentDigestIntegrationTest extends ApiTestSupport {

  private static final String WANT = "Want-Content-Digest";
  private static final String DIGEST = "Content-Digest";
  private static final String MISMATCH = "https://fvdisk.dev/problems/digest-mismatch";
  private static final String BAD_REQUEST = "https://fvdisk.dev/problems/bad-request";
  private static final int LARGE = 3 << 20;

  private static final HttpClient HTTP =
      HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

  @Test
  void a_range_read_carries_the_digest_of_its_body_in_the_algorithm_preferred() {
    String name = createImage("digest-range", 4 * MIB);
    byte[] data = pattern(200_000, 1);
    write(name, 0, data);
    for (String wanted : List.of("sha-256=1", "sha-512=1", "sha-256=1, sha-512=2")) {
      ExtractableResponse<Response> answer =
          api()
              .header("Range", "bytes=1000-150999")
              .header(WANT, wanted)
              .get(IMAGES + "/" + name + "/data")
              .then()
              .statusCode(206)
              .extract();
      byte[] body = answer.asByteArray();
      assertThat(body).isEqualTo(Arrays.copyOfRange(data, 1000, 151000));
      String algorithm = wanted.contains("sha-512") ? "sha-512" : "sha-256";
      assertThat(answer.header(DIGEST)).as(wanted).isEqualTo(digestField(algorithm, body));
    }
  }

  @Test
  void a_whole_disk_and_sectors_carry_the_digest_of_their_bodies() {
    String name = createImage("digest-whole", 256 * 1024);
    write(name, 512, pattern(100_000, 2));
    ExtractableResponse<Response> whole =
        api()
            .header(WANT, "sha-512=3, sha-256=1")
            .get(IMAGES + "/" + name + "/data")
            .then()
            .statusCode(200)
            .extract();
    assertThat(whole.asByteArray()).hasSize(256 * 1024);
    assertThat(whole.header(DIGEST)).isEqualTo(digestField("sha-512", whole.asByteArray()));

    ExtractableResponse<Response> sectors =
        api()
            .header(WANT, "sha-256=2, sha-512=1")
            .get(IMAGES + "/" + name + "/sectors/3?count=5")
            .then()
            .statusCode(200)
            .extract();
    assertThat(sectors.asByteArray())
        .isEqualTo(Arrays.copyOfRange(pattern(100_000, 2), 3 * 512 - 512, 8 * 512 - 512));
    assertThat(sectors.header(DIGEST)).isEqualTo(digestField("sha-256", sectors.asByteArray()));
  }

  /** Longer than one 1 MiB buffer: the digest comes from a first read, the body from a second. */
  @Test
  void reads_longer_than_a_buffer_carry_the_digest_of_their_bodies() throws Exception {
    String name = createImage("digest-long", 4 * MIB);
    byte[] data = pattern(LARGE, 3);
    put(name, 4096, data, null);
    HttpResponse<byte[]> whole = get(name, null, "sha-256=1");
    assertThat(whole.statusCode()).isEqualTo(200);
    assertThat(whole.body()).hasSize((int) (4 * MIB));
    assertThat(whole.headers().firstValue(DIGEST)).hasValue(digestField("sha-256", whole.body()));

    HttpResponse<byte[]> range = get(name, "bytes=5000-2600000", "sha-512=1");
    assertThat(range.statusCode()).isEqualTo(206);
    assertThat(range.body()).isEqualTo(Arrays.copyOfRange(data, 5000 - 4096, 2600001 - 4096));
    assertThat(range.headers().firstValue(DIGEST)).hasValue(digestField("sha-512", range.body()));
  }

  @Test
  void reads_that_want_no_supported_digest_get_none_and_their_data_all_the_same() {
    String name = createImage("digest-none", MIB);
    byte[] data = pattern(4096, 4);
    write(name, 0, data);
    for (String wanted : List.of("md5=5, unixsum=1", "sha-256=0", "sha-256=0, sha-512=0")) {
      ExtractableResponse<Response> answer =
          api()
              .header("Range", "bytes=0-4095")
              .header(WANT, wanted)
              .get(IMAGES + "/" + name + "/data")
              .then()
              .statusCode(206)
              .extract();
      assertThat(answer.header(DIGEST)).as(wanted).isNull();
      assertThat(answer.asByteArray()).isEqualTo(data);
    }
    // Malformed: only a wish, so the read goes on without a digest.
    for (String wanted : List.of("sha-256=1,", "SHA-256=1", "sha-256=(1")) {
      ExtractableResponse<Response> answer =
          raw()
              .header("Range", "bytes=0-4095")
              .header(WANT, wanted)
              .get(IMAGES + "/" + name + "/data")
              .then()
              .statusCode(206)
              .extract();
      assertThat(answer.header(DIGEST)).as(wanted).isNull();
      assertThat(answer.asByteArray()).isEqualTo(data);
    }
    assertThat(
            api()
                .header("Range", "bytes=0-4095")
                .get(IMAGES + "/" + name + "/data")
                .then()
                .statusCode(206)
                .extract()
                .header(DIGEST))
        .isNull();
  }

  @Test
  void head_gets_no_digest() {
    String name = createImage("digest-head", MIB);
    ExtractableResponse<Response> head =
        api().header(WANT, "sha-256=1").head(IMAGES + "/" + name + "/data").then().extract();
    assertThat(head.statusCode()).isEqualTo(200);
    assertThat(head.header(DIGEST)).isNull();
    // Spring MVC answers HEAD on the sectors path with the GET handler, which must not hash either.
    ExtractableResponse<Response> sectors =
        raw()
            .header(WANT, "sha-256=1")
            .head(IMAGES + "/" + name + "/sectors/0?count=8")
            .then()
            .extract();
    assertThat(sectors.statusCode()).isEqualTo(200);
    assertThat(sectors.header(DIGEST)).isNull();
  }

  @Test
  void small_writes_with_a_matching_digest_are_written() {
    String name = createImage("digest-put-small", MIB);
    byte[] data = pattern(4096, 5);
    api()
        .contentType("application/octet-stream")
        .header("Content-Range", contentRange(10_000, data.length))
        .header(DIGEST, digestField("sha-256", data))
        .body(data)
        .put(IMAGES + "/" + name + "/data")
        .then()
        .statusCode(204);
    assertThat(read(name, 10_000, data.length)).isEqualTo(data);

    byte[] sectors = pattern(4096, 6);
    api()
        .contentType("application/octet-stream")
        .header(DIGEST, digestField("sha-512", sectors))
        .body(sectors)
        .put(IMAGES + "/" + name + "/sectors/100")
        .then()
        .statusCode(204);
    assertThat(read(name, 100 * 512, sectors.length)).isEqualTo(sectors);

    // Unknown algorithms are ignored; every supported one must match.
    byte[] more = pattern(4096, 7);
    api()
        .contentType("application/octet-stream")
        .header("Content-Range", contentRange(0, more.length))
        .header(DIGEST, "md5=:AAAA:, " + digestField("sha-256", more))
        .body(more)
        .put(IMAGES + "/" + name + "/data")
        .then()
        .statusCode(204);
    assertThat(read(name, 0, more.length)).isEqualTo(more);
    assertNothingStaged();
  }

  @Test
  void small_writes_whose_body_does_not_match_change_nothing(CapturedOutput output) {
    String name = createImage("digest-bad-small", MIB);
    write(name, 0, pattern(8192, 8));
    String before = checksum(name);
    byte[] data = pattern(4096, 9);
    byte[] other = pattern(4096, 10);
    List<String> wrong =
        List.of(
            digestField("sha-256", other),
            digestField("sha-512", other),
            digestField("sha-256", data) + ", " + digestField("sha-512", other));
    for (String field : wrong) {
      api()
          .contentType("application/octet-stream")
          .header("Content-Range", contentRange(0, data.length))
          .header(DIGEST, field)
          .body(data)
          .put(IMAGES + "/" + name + "/data")
          .then()
          .statusCode(400)
          .contentType("application/problem+json")
          .body("type", equalTo(MISMATCH))
          .body("title", equalTo("Content digest mismatch"))
          .body("detail", containsString("nothing was written"));
    }
    api()
        .contentType("application/octet-stream")
        .header(DIGEST, digestField("sha-256", other))
        .body(data)
        .put(IMAGES + "/" + name + "/sectors/0")
        .then()
        .statusCode(400)
        .body("type", equalTo(MISMATCH));
    assertThat(checksum(name)).isEqualTo(before);
    assertThat(output.getOut()).doesNotContain("\tat ").doesNotContain(" ERROR ");
  }

  @Test
  void malformed_or_unsupported_content_digests_are_400_and_change_nothing(CapturedOutput output) {
    String name = createImage("digest-malformed", MIB);
    write(name, 0, pattern(4096, 11));
    String before = checksum(name);
    byte[] data = pattern(4096, 12);
    for (String field :
        List.of("sha-256=abc", "sha-256=:not base64!:", "sha-256=1", "sha-256=:AAAA:,")) {
      raw()
          .contentType("application/octet-stream")
          .header("Content-Range", contentRange(0, data.length))
          .header(DIGEST, field)
          .body(data)
          .put(IMAGES + "/" + name + "/data")
          .then()
          .statusCode(400)
          .contentType("application/problem+json")
          .body("type", equalTo(BAD_REQUEST))
          .body("detail", containsString("supported algorithms are sha-256, sha-512"));
    }
    api()
        .contentType("application/octet-stream")
        .header("Content-Range", contentRange(0, data.length))
        .header(DIGEST, "md5=:XUFAKrxLKna5cZ2REBfFkg==:, unixsum=:AAAA:")
        .body(data)
        .put(IMAGES + "/" + name + "/data")
        .then()
        .statusCode(400)
        .body("type", equalTo(BAD_REQUEST))
        .body("detail", containsString("names no supported algorithm"))
        .body("detail", containsString("sha-256, sha-512"));
    assertThat(checksum(name)).isEqualTo(before);
    assertThat(output.getOut()).doesNotContain("\tat ").doesNotContain(" ERROR ");
  }

  @Test
  void large_writes_are_staged_checked_and_written_or_refused() throws Exception {
    String name = createImage("digest-large", 8 * MIB);
    byte[] data = pattern(LARGE, 13);
    HttpResponse<String> written = put(name, MIB + 100, data, digestField("sha-256", data));
    assertThat(written.statusCode()).as(written.body()).isEqualTo(204);
    assertThat(get(name, range(MIB + 100, LARGE), null).body()).isEqualTo(data);

    byte[] other = pattern(LARGE, 14);
    for (String field :
        List.of(
            digestField("sha-256", data),
            digestField("sha-512", data),
            digestField("sha-256", other) + ", " + digestField("sha-512", data))) {
      HttpResponse<String> refused = put(name, MIB + 100, other, field);
      assertThat(refused.statusCode()).as(refused.body()).isEqualTo(400);
      assertThat(refused.headers().firstValue("Content-Type"))
          .hasValueSatisfying(type -> assertThat(type).startsWith("application/problem+json"));
      assertThat(refused.body()).contains("\"type\":\"" + MISMATCH + "\"");
      assertThat(get(name, range(MIB + 100, LARGE), null).body()).isEqualTo(data);
    }

    HttpResponse<String> rewritten = put(name, MIB + 100, other, digestField("sha-512", other));
    assertThat(rewritten.statusCode()).as(rewritten.body()).isEqualTo(204);
    assertThat(get(name, range(MIB + 100, LARGE), null).body()).isEqualTo(other);
    assertThat(DATA_DIR.resolve(".staging")).isDirectory();
    assertNothingStaged();
    assertThat(api().get(IMAGES).then().statusCode(200).extract().jsonPath().getList("images.name"))
        .doesNotContain(".staging");
  }

  @Test
  void a_staged_body_that_ends_early_writes_nothing_and_leaves_no_file(CapturedOutput output)
      throws Exception {
    String name = createImage("digest-cut", 8 * MIB);
    byte[] data = pattern(LARGE, 15);
    String before = checksum(name);
    RawHttp.Response answer;
    try (Socket socket = RawHttp.connect(port)) {
      OutputStream out = socket.getOutputStream();
      out.write(
          ("PUT "
                  + IMAGES
                  + "/"
                  + name
                  + "/data HTTP/1.1\r\nHost: localhost\r\n"
                  + "Content-Type: application/octet-stream\r\nContent-Length: "
                  + LARGE
                  + "\r\n"
                  + DIGEST
                  + ": "
                  + digestField("sha-256", data)
                  + "\r\n\r\n")
              .getBytes(StandardCharsets.ISO_8859_1));
      out.write(data, 0, 2_000_000);
      out.flush();
      socket.shutdownOutput();
      answer = RawHttp.read(socket.getInputStream(), false);
    }
    assertThat(answer.status()).as(answer.toString()).isEqualTo(400);
    assertThat(answer.text())
        .contains("the body ended after 2000000 of the " + LARGE + " bytes")
        .contains("nothing was written");
    assertThat(checksum(name)).isEqualTo(before);
    assertNothingStaged();
    assertThat(output.getOut()).doesNotContain("\tat ").doesNotContain(" ERROR ");
  }

  @AfterAll
  static void noStagedFileOutlivesItsRequest() throws Exception {
    assertNothingStaged();
  }

  /** The staging directory holds no file; a request the server is still ending gets a moment. */
  private static void assertNothingStaged() {
    Path staging = DATA_DIR.resolve(".staging");
    long deadline = System.nanoTime() + 5_000_000_000L;
    List<Path> files = staged(staging);
    while (!files.isEmpty() && System.nanoTime() < deadline) {
      try {
        Thread.sleep(50);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
      files = staged(staging);
    }
    assertThat(files).as("files left in %s", staging).isEmpty();
  }

  private static List<Path> staged(Path staging) {
    if (!Files.isDirectory(staging)) {
      return List.of();
    }
    try (Stream<Path> files = Files.list(staging)) {
      return files.toList();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private HttpResponse<String> put(String name, long offsetBytes, byte[] data, String digest)
      throws IOException, InterruptedException {
    HttpRequest.Builder request =
        HttpRequest.newBuilder(
                URI.create("http://127.0.0.1:" + port + IMAGES + "/" + name + "/data"))
            .header("Content-Type", "application/octet-stream")
            .header("Content-Range", contentRange(offsetBytes, data.length))
            .PUT(HttpRequest.BodyPublishers.ofByteArray(data));
    if (digest != null) {
      request.header(DIGEST, digest);
    }
    return HTTP.send(request.build(), HttpResponse.BodyHandlers.ofString());
  }

  private HttpResponse<byte[]> get(String name, String range, String wanted)
      throws IOException, InterruptedException {
    HttpRequest.Builder request =
        HttpRequest.newBuilder(
            URI.create("http://127.0.0.1:" + port + IMAGES + "/" + name + "/data"));
    if (range != null) {
      request.header("Range", range);
    }
    if (wanted != null) {
      request.header(WANT, wanted);
    }
    return HTTP.send(request.build(), HttpResponse.BodyHandlers.ofByteArray());
  }

  private static String range(long offsetBytes, long lengthBytes) {
    return "bytes=" + offsetBytes + "-" + (offsetBytes + lengthBytes - 1);
  }

  /** The {@code Content-Digest} field of {@code body}, computed here with the JDK. */
  static String digestField(String algorithm, byte[] body) {
    try {
      byte[] digest = MessageDigest.getInstance(algorithm.toUpperCase(Locale.ROOT)).digest(body);
      return algorithm + "=:" + Base64.getEncoder().encodeToString(digest) + ":";
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
