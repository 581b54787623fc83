package dev.fvdisk.web;

import static dev.fvdisk.testing.DataPortHttp.assertClosedByServer;
import static dev.fvdisk.testing.DataPortHttp.assertSameOnBothPorts;
import static dev.fvdisk.testing.DataPortHttp.get;
import static dev.fvdisk.testing.DataPortHttp.problem;
import static dev.fvdisk.testing.DataPortHttp.readOne;
import static dev.fvdisk.testing.DataPortHttp.send;
import static org.assertj.core.api.Assertions.assertThat;

import dev.fvdisk.testing.DataPortHttp;
import dev.fvdisk.testing.RawHttp;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.Base64;
import java.util.Map;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The data port ({@code fvdisk.http-data.*}) beside the main port, without tokens: the same reads
 * get the same answers from both doors, the port speaks strict HTTP/1.1 on a raw socket, and its
 * reads are counted in {@code http.server.requests} as the main port's are.
 */
class DataPortIntegrationTest extends ApiTestSupport {

  private static final long SIZE = 256 << 10;
  private static final long CHUNK = 64 << 10;
  private static final String PROBLEMS = "https://fvdisk.dev/problems/";

  /** The image of each test, and what its bytes are. */
  private String image;

  private byte[] model;

  /** A small disk with three written areas (start, middle, end) and zeros between. */
  @BeforeEach
  void imageWithData() {
    image = createImage("dp", SIZE, CHUNK);
    model = new byte[(int) SIZE];
    writeBoth(0, pattern(4096, 1));
    writeBoth(70000, pattern(30000, 2));
    writeBoth(SIZE - 1000, pattern(1000, 3));
  }

  private void writeBoth(long offset, byte[] data) {
    write(image, offset, data);
    System.arraycopy(data, 0, model, (int) offset, data.length);
  }

  private String data(String name) {
    return IMAGES + "/" + name + "/data";
  }

  private byte[] slice(long first, long last) {
    return Arrays.copyOfRange(model, (int) first, (int) last + 1);
  }

  private Socket connect() throws IOException {
    Socket socket = RawHttp.connect(dataPort.port());
    socket.setSoTimeout(30_000);
    return socket;
  }

  // ---- the same answers from both ports ----

  @Test
  void ranges_get_the_same_206_headers_and_bytes_on_both_ports() throws IOException {
    assertThat(dataPort.port()).isPositive().isNotEqualTo(port);
    Object[][] cases = {
      {"bytes=0-0", 0L, 0L},
      {"bytes=70000-70999", 70000L, 70999L},
      {"bytes=" + (SIZE - 1) + "-" + (SIZE - 1), SIZE - 1, SIZE - 1},
      {"bytes=-100", SIZE - 100, SIZE - 1},
      {"bytes=-" + (4 * SIZE), 0L, SIZE - 1},
      {"bytes=200000-", 200000L, SIZE - 1},
      {"bytes=60000-110000", 60000L, 110000L},
      {"bytes=" + (SIZE - 10) + "-" + (10 * SIZE), SIZE - 10, SIZE - 1}
    };
    for (Object[] c : cases) {
      String range = (String) c[0];
      long first = (Long) c[1];
      long last = (Long) c[2];
      DataPortHttp.Pair answers =
          assertSameOnBothPorts(
              port, dataPort.port(), "GET", data(image), Map.of("Range", range), true);
      RawHttp.Response data = answers.data();
      assertThat(data.status()).as(range).isEqualTo(206);
      assertThat(data.header("Content-Range"))
          .as(range)
          .isEqualTo("bytes " + first + "-" + last + "/" + SIZE);
      assertThat(data.header("Content-Length")).as(range).isEqualTo("" + (last - first + 1));
      assertThat(data.header("Content-Type")).isEqualTo("application/octet-stream");
      assertThat(data.header("Accept-Ranges")).isEqualTo("bytes");
      assertThat(data.header("ETag")).isNotBlank();
      assertThat(data.body()).as(range).isEqualTo(slice(first, last));
    }
  }

  @Test
  void the_whole_disk_without_range_and_head_are_the_same_on_both_ports() throws IOException {
    RawHttp.Response whole =
        assertSameOnBothPorts(port, dataPort.port(), "GET", data(image), Map.of(), true).data();
    assertThat(whole.status()).isEqualTo(200);
    assertThat(whole.header("Content-Length")).isEqualTo("" + SIZE);
    assertThat(whole.header("Content-Range")).isNull();
    assertThat(whole.body()).isEqualTo(model);

    RawHttp.Response head =
        assertSameOnBothPorts(port, dataPort.port(), "HEAD", data(image), Map.of(), true).data();
    assertThat(head.status()).isEqualTo(200);
    assertThat(head.header("Content-Length")).isEqualTo("" + SIZE);
    assertThat(head.header("Accept-Ranges")).isEqualTo("bytes");
    assertThat(head.header("ETag")).isEqualTo(whole.header("ETag"));
    assertThat(head.body()).isEmpty();
  }

  @Test
  void a_write_changes_the_etag_alike_on_both_ports() throws IOException {
    String before =
        assertSameOnBothPorts(port, dataPort.port(), "HEAD", data(image), Map.of(), true)
            .data()
            .header("ETag");
    writeBoth(5000, pattern(100, 4));
    RawHttp.Response after =
        assertSameOnBothPorts(
                port, dataPort.port(), "GET", data(image), Map.of("Range", "bytes=4990-5109"), true)
            .data();
    assertThat(after.header("ETag")).isNotEqualTo(before);
    assertThat(after.body()).isEqualTo(slice(4990, 5109));
  }

  @Test
  void content_digest_of_a_range_is_the_same_on_both_ports() throws IOException {
    RawHttp.Response data =
        assertSameOnBothPorts(
                port,
                dataPort.port(),
                "GET",
                data(image),
                Map.of("Range", "bytes=60000-110000", "Want-Content-Digest", "sha-256=1"),
                true)
            .data();
    assertThat(data.status()).isEqualTo(206);
    String expected =
        "sha-256=:" + Base64.getEncoder().encodeToString(sha256(slice(60000, 110000))) + ":";
    assertThat(data.header("Content-Digest")).isEqualTo(expected);
    assertThat(data.body()).isEqualTo(slice(60000, 110000));
  }

  private static byte[] sha256(byte[] bytes) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(bytes);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  @Test
  void unsatisfiable_ranges_are_the_same_416_on_both_ports() throws IOException {
    for (String range :
        new String[] {
          "bytes=" + SIZE + "-",
          "bytes=" + (SIZE + 10) + "-" + (SIZE + 20),
          "bytes=0-1,5-9",
          "bytes=20-10",
          "bytes=-0"
        }) {
      RawHttp.Response data =
          assertSameOnBothPorts(
                  port, dataPort.port(), "GET", data(image), Map.of("Range", range), true)
              .data();
      assertThat(data.status()).as(range).isEqualTo(416);
      assertThat(data.header("Content-Range")).as(range).isEqualTo("bytes */" + SIZE);
      assertThat(problem(data))
          .as(range)
          .containsEntry("type", PROBLEMS + "range-not-satisfiable")
          .containsEntry("sizeBytes", (int) SIZE)
          .containsEntry("instance", data(image));
    }
  }

  @Test
  void malformed_ranges_are_the_same_400_on_both_ports() throws IOException {
    for (String range : new String[] {"bytes=x-y", "items=0-1", "bytes=-", "0-10"}) {
      RawHttp.Response data =
          assertSameOnBothPorts(
                  port, dataPort.port(), "GET", data(image), Map.of("Range", range), true)
              .data();
      assertThat(data.status()).as(range).isEqualTo(400);
      assertThat(problem(data)).as(range).containsEntry("type", PROBLEMS + "bad-request");
    }
  }

  @Test
  void a_missing_image_is_the_same_404_on_both_ports() throws IOException {
    String missing = uniqueName("missing");
    for (String method : new String[] {"GET", "HEAD"}) {
      RawHttp.Response data =
          assertSameOnBothPorts(
                  port, dataPort.port(), method, data(missing), Map.of("Range", "bytes=0-9"), true)
              .data();
      assertThat(data.status()).as(method).isEqualTo(404);
      if (method.equals("GET")) {
        assertThat(problem(data))
            .containsEntry("type", PROBLEMS + "image-not-found")
            .containsEntry("instance", data(missing));
      }
    }
  }

  @Test
  void other_methods_are_405_on_both_ports_with_their_own_detail() throws IOException {
    for (String method : new String[] {"POST", "DELETE"}) {
      DataPortHttp.Pair answers =
          assertSameOnBothPorts(port, dataPort.port(), method, data(image), Map.of(), false);
      assertThat(answers.data().status()).as(method).isEqualTo(405);
      assertThat(answers.data().header("Allow")).as(method).isEqualTo("GET, HEAD, PUT");
      assertThat(problem(answers.data()))
          .containsEntry("type", PROBLEMS + "method-not-allowed")
          .containsEntry("instance", data(image));
    }
  }

  // ---- HTTP/1.1 on a raw socket ----

  @Test
  void pipelined_requests_are_answered_in_order() throws IOException {
    try (Socket socket = connect()) {
      InputStream in = new BufferedInputStream(socket.getInputStream());
      send(
          socket,
          get(image, "bytes=70000-70099")
              + "HEAD "
              + data(image)
              + " HTTP/1.1\r\nHost: localhost\r\n\r\n"
              + get(image, "bytes=0-4095")
              + get(image, "bytes=-1000"));
      RawHttp.Response first = readOne(in, false);
      assertThat(first.status()).isEqualTo(206);
      assertThat(first.header("Content-Range")).isEqualTo("bytes 70000-70099/" + SIZE);
      assertThat(first.body()).isEqualTo(slice(70000, 70099));
      RawHttp.Response head = readOne(in, true);
      assertThat(head.status()).isEqualTo(200);
      assertThat(head.header("Content-Length")).isEqualTo("" + SIZE);
      RawHttp.Response third = readOne(in, false);
      assertThat(third.status()).isEqualTo(206);
      assertThat(third.header("Content-Range")).isEqualTo("bytes 0-4095/" + SIZE);
      assertThat(third.body()).isEqualTo(slice(0, 4095));
      RawHttp.Response fourth = readOne(in, false);
      assertThat(fourth.status()).isEqualTo(206);
      assertThat(fourth.body()).isEqualTo(slice(SIZE - 1000, SIZE - 1));
      // Still open: one more request on the same connection.
      send(socket, get(image, "bytes=1-2"));
      assertThat(readOne(in, false).body()).isEqualTo(slice(1, 2));
    }
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "GET /api/v1/images/IMAGE/data HTTP/1.1\nHost: localhost\r\n\r\n",
        "GET /api/v1/images/IMAGE/data HTTP/1.1\r\nHost: localhost\r\nX-Folded: a\r\n b\r\n\r\n",
        "GET /api/v1/images/IMAGE/data HTTP/1.1\r\nHost : localhost\r\n\r\n",
        "GET /api/v1/images/IMAGE/data HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n"
            + "Content-Length: 0\r\n\r\n",
        "GET /api/v1/images/IMAGE/data HTTP/1.1\r\nHost: localhost\r\nRange: bytes=0-1\r\n"
            + "Range: bytes=0-1\r\n\r\n",
        "GET /api/v1/images/IMAGE/data HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer a\r\n"
            + "Authorization: Bearer b\r\n\r\n",
        "GET /api/v1/images/IMAGE/data HTTP/1.1\r\nHost: localhost\r\nHost: example.com\r\n\r\n",
        "GET /api/v1/images/IMAGE/data HTTP/1.1\r\nRange: bytes=0-1\r\n\r\n",
        "GET http://localhost/api/v1/images/IMAGE/data HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "GET /api/v1/images/IMAGE/data HTTP/1.2\r\nHost: localhost\r\n\r\n",
        "GET /api/v1/images/IMAGE/data HTTP/2.0\r\nHost: localhost\r\n\r\n",
        "GET /api/v1/images/IMAGE/data\r\nHost: localhost\r\n\r\n"
      })
  void a_malformed_head_is_400_and_the_connection_closed(String request) throws IOException {
    try (Socket socket = connect()) {
      InputStream in = new BufferedInputStream(socket.getInputStream());
      // The image exists, so only the head's form can make the answer 400.
      send(socket, request.replace("IMAGE", image));
      RawHttp.Response answer = readOne(in, false);
      assertThat(answer.status()).as(request).isEqualTo(400);
      assertThat(answer.header("Connection")).as(request).isEqualTo("close");
      assertThat(problem(answer))
          .as(request)
          .containsEntry("type", PROBLEMS + "bad-request")
          .containsEntry("status", 400)
          .containsKey("detail");
      assertClosedByServer(in);
    }
  }

  @Test
  void a_read_with_a_body_is_400_and_the_connection_closed() throws IOException {
    for (String bodyHeaders :
        new String[] {
          "Content-Length: 5\r\n\r\nhello",
          "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
          "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        }) {
      try (Socket socket = connect()) {
        InputStream in = new BufferedInputStream(socket.getInputStream());
        send(
            socket,
            "GET "
                + data(image)
                + " HTTP/1.1\r\nHost: localhost\r\nRange: bytes=0-9\r\n"
                + bodyHeaders);
        RawHttp.Response answer = readOne(in, false);
        assertThat(answer.status()).as(bodyHeaders).isEqualTo(400);
        assertThat(answer.header("Connection")).as(bodyHeaders).isEqualTo("close");
        assertThat(problem(answer)).containsEntry("type", PROBLEMS + "bad-request");
        assertClosedByServer(in);
      }
    }
  }

  @Test
  void an_empty_content_length_is_no_body_and_is_answered() throws IOException {
    try (Socket socket = connect()) {
      InputStream in = new BufferedInputStream(socket.getInputStream());
      send(
          socket,
          "GET "
              + data(image)
              + " HTTP/1.1\r\nHost: localhost\r\nRange: bytes=0-9\r\nContent-Length: 0\r\n\r\n");
      RawHttp.Response answer = readOne(in, false);
      assertThat(answer.status()).isEqualTo(206);
      assertThat(answer.body()).isEqualTo(slice(0, 9));
    }
  }

  @Test
  void a_head_longer_than_8192_bytes_is_431_and_the_connection_closed() throws IOException {
    try (Socket socket = connect()) {
      InputStream in = new BufferedInputStream(socket.getInputStream());
      send(
          socket,
          "GET "
              + data(image)
              + " HTTP/1.1\r\nHost: localhost\r\nX-Padding: "
              + "a".repeat(9000)
              + "\r\n\r\n");
      RawHttp.Response answer = readOne(in, false);
      assertThat(answer.status()).isEqualTo(431);
      assertThat(answer.header("Connection")).isEqualTo("close");
      assertThat(problem(answer)).containsEntry("type", PROBLEMS + "headers-too-large");
      assertClosedByServer(in);
    }
  }

  @Test
  void a_head_just_under_the_limit_is_answered() throws IOException {
    try (Socket socket = connect()) {
      InputStream in = new BufferedInputStream(socket.getInputStream());
      String start = "GET " + data(image) + " HTTP/1.1\r\nHost: localhost\r\nX-Padding: ";
      String end = "\r\nRange: bytes=0-9\r\n\r\n";
      send(socket, start + "a".repeat(8192 - start.length() - end.length()) + end);
      RawHttp.Response answer = readOne(in, false);
      assertThat(answer.status()).isEqualTo(206);
      assertThat(answer.body()).isEqualTo(slice(0, 9));
    }
  }

  @Test
  void connection_close_closes_after_the_answer() throws IOException {
    try (Socket socket = connect()) {
      InputStream in = new BufferedInputStream(socket.getInputStream());
      send(
          socket,
          "GET "
              + data(image)
              + " HTTP/1.1\r\nHost: localhost\r\nRange: bytes=70000-70009\r\n"
              + "Connection: close\r\n\r\n");
      RawHttp.Response answer = readOne(in, false);
      assertThat(answer.status()).isEqualTo(206);
      assertThat(answer.body()).isEqualTo(slice(70000, 70009));
      assertThat(answer.header("Connection")).isEqualTo("close");
      assertClosedByServer(in);
    }
  }

  @Test
  void http_1_0_closes_after_the_answer_unless_kept_alive() throws IOException {
    try (Socket socket = connect()) {
      InputStream in = new BufferedInputStream(socket.getInputStream());
      send(socket, "GET " + data(image) + " HTTP/1.0\r\nRange: bytes=70000-70009\r\n\r\n");
      RawHttp.Response answer = readOne(in, false);
      assertThat(answer.status()).isEqualTo(206);
      assertThat(answer.body()).isEqualTo(slice(70000, 70009));
      assertClosedByServer(in);
    }
    try (Socket socket = connect()) {
      InputStream in = new BufferedInputStream(socket.getInputStream());
      for (int i = 0; i < 2; i++) {
        send(
            socket,
            "GET "
                + data(image)
                + " HTTP/1.0\r\nConnection: keep-alive\r\nRange: bytes=0-9\r\n\r\n");
        RawHttp.Response answer = readOne(in, false);
        assertThat(answer.status()).isEqualTo(206);
        assertThat(answer.body()).isEqualTo(slice(0, 9));
        // An HTTP/1.0 client closes unless the answer says the connection stays.
        assertThat(answer.header("Connection")).isEqualTo("keep-alive");
      }
    }
  }

  @Test
  void a_query_string_is_400_and_the_connection_stays_usable() throws IOException {
    try (Socket socket = connect()) {
      InputStream in = new BufferedInputStream(socket.getInputStream());
      send(
          socket,
          "GET "
              + data(image)
              + "?flush=false HTTP/1.1\r\nHost: localhost\r\nRange: bytes=0-9\r\n\r\n");
      RawHttp.Response refused = readOne(in, false);
      assertThat(refused.status()).isEqualTo(400);
      assertThat(refused.header("Connection")).isNull();
      assertThat(problem(refused))
          .containsEntry("type", PROBLEMS + "bad-request")
          .containsEntry("instance", data(image));
      send(socket, get(image, "bytes=70000-70009"));
      RawHttp.Response next = readOne(in, false);
      assertThat(next.status()).isEqualTo(206);
      assertThat(next.body()).isEqualTo(slice(70000, 70009));
    }
  }

  @Test
  void other_methods_are_405_with_allow_and_the_connection_stays_usable() throws IOException {
    try (Socket socket = connect()) {
      InputStream in = new BufferedInputStream(socket.getInputStream());
      for (String method : new String[] {"POST", "DELETE", "OPTIONS", "PATCH"}) {
        send(socket, method + " " + data(image) + " HTTP/1.1\r\nHost: localhost\r\n\r\n");
        RawHttp.Response answer = readOne(in, false);
        assertThat(answer.status()).as(method).isEqualTo(405);
        assertThat(answer.header("Allow")).as(method).isEqualTo("GET, HEAD, PUT");
        assertThat(problem(answer))
            .as(method)
            .containsEntry("type", PROBLEMS + "method-not-allowed");
      }
      send(socket, get(image, "bytes=0-9"));
      assertThat(readOne(in, false).body()).isEqualTo(slice(0, 9));
    }
  }

  @Test
  void other_paths_are_404() throws IOException {
    try (Socket socket = connect()) {
      InputStream in = new BufferedInputStream(socket.getInputStream());
      for (String path :
          new String[] {
            IMAGES,
            IMAGES + "/" + image,
            IMAGES + "/" + image + "/data/",
            IMAGES + "/" + image + "/sectors/0",
            IMAGES + "//data",
            IMAGES + "/../data",
            IMAGES + "/a%2Fb/data",
            "/actuator/prometheus",
            "/"
          }) {
        send(socket, "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n\r\n");
        RawHttp.Response answer = readOne(in, false);
        assertThat(answer.status()).as(path).isEqualTo(404);
        assertThat(problem(answer))
            .as(path)
            .containsEntry("type", PROBLEMS + "not-found")
            .containsEntry("instance", path);
      }
      send(socket, get(image, "bytes=0-9"));
      assertThat(readOne(in, false).body()).isEqualTo(slice(0, 9));
    }
  }

  // ---- metrics ----

  @Test
  void data_port_reads_are_counted_in_http_server_requests() throws IOException {
    double before = count206();
    int reads = 7;
    try (Socket socket = connect()) {
      InputStream in = new BufferedInputStream(socket.getInputStream());
      for (int i = 0; i < reads; i++) {
        send(socket, get(image, "bytes=" + i + "-" + (i + 99)));
        assertThat(readOne(in, false).status()).isEqualTo(206);
      }
    }
    assertThat(count206() - before).isGreaterThanOrEqualTo(reads);
  }

  /**
   * A client that closes its connection while its answer is being sent is recorded with the status
   * it was sent and the exception that ended the answer, as the main port records one, not as a
   * failure of the server (500).
   */
  @Test
  void a_client_that_leaves_during_its_answer_is_not_recorded_as_a_500() throws Exception {
    // Larger than what the socket buffers hold, so the server is still writing when it goes.
    String large = createImage("dp-large", 64L << 20, CHUNK);
    double errorsBefore = countData("500", null);
    double leftBefore = countData("200", "IOException");
    try (Socket socket = new Socket()) {
      socket.setReceiveBufferSize(4096);
      socket.connect(new java.net.InetSocketAddress("127.0.0.1", dataPort.port()));
      socket.setSoTimeout(30_000);
      send(socket, get(large, null));
      assertThat(socket.getInputStream().read(new byte[64])).as("the answer began").isPositive();
      // Closing with unread bytes sends a reset: the server's next write fails.
      socket.setSoLinger(true, 0);
    }
    long deadline = System.nanoTime() + 30_000_000_000L;
    while (countData("200", "IOException") == leftBefore && System.nanoTime() < deadline) {
      Thread.sleep(50);
    }
    assertThat(countData("200", "IOException") - leftBefore)
        .as("one GET recorded as 200 with the exception that ended it")
        .isEqualTo(1);
    assertThat(countData("500", null)).as("no 500 recorded").isEqualTo(errorsBefore);
  }

  /** The count of 206 answers to GET of the data path, summed over every other tag. */
  private double count206() {
    return countData("206", null);
  }

  /**
   * The count of answers with {@code status} to GET of the data path, and with {@code exception}
   * when given, summed over every other tag.
   */
  private double countData(String status, @Nullable String exception) {
    String scrape = raw().get("/actuator/prometheus").then().statusCode(200).extract().asString();
    return scrape
        .lines()
        .filter(
            line ->
                line.startsWith("http_server_requests_seconds_count{")
                    && line.contains("method=\"GET\"")
                    && line.contains("status=\"" + status + "\"")
                    && (exception == null || line.contains("exception=\"" + exception + "\""))
                    && line.contains("uri=\"/api/v1/images/{name}/data\""))
        .mapToDouble(line -> Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1)))
        .sum();
  }
}
