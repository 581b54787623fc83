package dev.fvdisk.web;

import static dev.fvdisk.testing.DataPortHttp.assertClosedByServer;
import static dev.fvdisk.testing.DataPortHttp.assertSameOnBothPorts;
import static dev.fvdisk.testing.DataPortHttp.get;
import static dev.fvdisk.testing.DataPortHttp.problem;
import static dev.fvdisk.testing.DataPortHttp.readOne;
import static org.assertj.core.api.Assertions.assertThat;

import dev.fvdisk.testing.DataPortHttp;
import dev.fvdisk.testing.RawHttp;
import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code PUT /api/v1/images/{name}/data} on the data port ({@code fvdisk.http-data.*}), without
 * tokens: a write lands exactly where its {@code Content-Range} says and is answered 204 with the
 * image's new entity tag, requests on one connection are answered in order, {@code Expect:
 * 100-continue} is honoured only for a write that will read its body, and every refusal leaves the
 * image as it was and answers as the main port does. What was written is always read back through
 * the main port, so that the data port's own read cannot hide a wrong write.
 */
class DataPortWriteIntegrationTest extends ApiTestSupport {

  private static final long SIZE = 256 << 10;
  private static final long CHUNK = 64 << 10;
  private static final String PROBLEMS = "https://fvdisk.dev/problems/";
  private static final String OCTETS = "Content-Type: application/octet-stream";

  /** The image of each test, and what its bytes are. */
  private String image;

  private byte[] model;

  /** A small disk with three written areas (start, middle, end) and zeros between. */
  @BeforeEach
  void imageWithData() {
    image = createImage("dpw", SIZE, CHUNK);
    model = new byte[(int) SIZE];
    writeMain(0, pattern(4096, 1));
    writeMain(70000, pattern(30000, 2));
    writeMain(SIZE - 1000, pattern(1000, 3));
  }

  /** A write through the main port, kept in the model. */
  private void writeMain(long offset, byte[] data) {
    write(image, offset, data);
    applied(offset, data);
  }

  /** Records in the model a write the server has acknowledged. */
  private void applied(long offset, byte[] data) {
    System.arraycopy(data, 0, model, (int) offset, data.length);
  }

  private static String data(String name) {
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

  // ---- requests ----

  /** A PUT head for {@code target}: Host, the given fields in order, and the blank line. */
  private static String put(String target, String... fields) {
    StringBuilder head = new StringBuilder("PUT " + target + " HTTP/1.1\r\nHost: localhost\r\n");
    for (String field : fields) {
      head.append(field).append("\r\n");
    }
    return head.append("\r\n").toString();
  }

  /** The fields of a plain ranged write of {@code length} bytes at {@code offset}, and more. */
  private static String[] ranged(long offset, long length, String... more) {
    List<String> fields = new ArrayList<>();
    fields.add(OCTETS);
    fields.add("Content-Range: " + contentRange(offset, length));
    fields.add("Content-Length: " + length);
    fields.addAll(List.of(more));
    return fields.toArray(String[]::new);
  }

  /** Heads (strings, ISO-8859-1) and bodies (byte arrays) one after another, as one write. */
  private static byte[] concat(Object... parts) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (Object part : parts) {
      out.writeBytes(
          part instanceof String text ? text.getBytes(StandardCharsets.ISO_8859_1) : (byte[]) part);
    }
    return out.toByteArray();
  }

  private static void send(Socket socket, Object... parts) throws IOException {
    OutputStream out = socket.getOutputStream();
    out.write(concat(parts));
    out.flush();
  }

  /** Bytes that repeat nowhere, so that a piece written at the wrong offset cannot match. */
  private static byte[] random(int length, long seed) {
    byte[] bytes = new byte[length];
    new Random(seed).nextBytes(bytes);
    return bytes;
  }

  private static String contentDigest(byte[] body) {
    try {
      return "Content-Digest: sha-256=:"
          + Base64.getEncoder().encodeToString(MessageDigest.getInstance("SHA-256").digest(body))
          + ":";
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  // ---- reading back through the main port ----

  private byte[] mainRead(String name, long first, long last) throws IOException {
    RawHttp.Response answer =
        RawHttp.exchange(
            port, "GET", data(name), Map.of("Range", "bytes=" + first + "-" + last), new byte[0]);
    assertThat(answer.status())
        .as("main port GET %s bytes=%d-%d", name, first, last)
        .isEqualTo(206);
    return answer.body();
  }

  /** The entity tag the main port gives the image's data now. */
  private String mainEtag(String name) throws IOException {
    RawHttp.Response head = RawHttp.exchange(port, "HEAD", data(name), Map.of(), new byte[0]);
    assertThat(head.status()).isEqualTo(200);
    return head.header("ETag");
  }

  /** The whole disk, read through the main port, is the model; the first difference is named. */
  private void assertDiskIsModel() throws IOException {
    RawHttp.Response whole = RawHttp.exchange(port, "GET", data(image), Map.of(), new byte[0]);
    assertThat(whole.status()).isEqualTo(200);
    assertSameBytes("the whole disk", whole.body(), model);
  }

  private static void assertSameBytes(String what, byte[] actual, byte[] expected) {
    assertThat(actual.length).as("length of " + what).isEqualTo(expected.length);
    assertThat(Arrays.mismatch(actual, expected))
        .as("first differing byte of " + what)
        .isEqualTo(-1);
  }

  // ---- writes that succeed ----

  @ParameterizedTest
  @ValueSource(strings = {"", "?flush=true", "?flush=false"})
  void a_ranged_put_writes_exactly_its_bytes_and_answers_204_with_the_new_etag(String query)
      throws IOException {
    String before = mainEtag(image);
    // Inside a written area, so the bytes on both sides are not zeros and an overrun would show.
    long offset = 70_501;
    byte[] body = random(1000, 11);
    try (Socket socket = connect()) {
      InputStream in = new BufferedInputStream(socket.getInputStream());
      send(socket, put(data(image) + query, ranged(offset, body.length)), body);
      RawHttp.Response answer = readOne(in, false);
      assertThat(answer.status()).as(answer.toString()).isEqualTo(204);
      assertThat(answer.header("Connection")).isNull();
      String etag = answer.header("ETag");
      assertThat(etag).isNotBlank().isNotEqualTo(before);
      // The tag the write answers is the one every later read and the image's metadata give.
      assertThat(mainEtag(image)).isEqualTo(etag);
      assertThat(etag(image)).isEqualTo(etag);
      applied(offset, body);
      assertThat(mainRead(image, offset - 16, offset + body.length + 15))
          .isEqualTo(slice(offset - 16, offset + body.length + 15));
      assertDiskIsModel();
      // A write whose body was read whole leaves the connection open for the next request.
      send(socket, get(image, "bytes=" + offset + "-" + (offset + 9)));
      RawHttp.Response next = readOne(in, false);
      assertThat(next.status()).isEqualTo(206);
      assertThat(next.header("ETag")).isEqualTo(etag);
      assertThat(next.body()).isEqualTo(slice(offset, offset + 9));
    }
  }

  @Test
  void a_put_without_content_range_writes_its_body_at_offset_zero() throws IOException {
    byte[] body = random(5000, 12);
    try (Socket socket = connect()) {
      InputStream in = new BufferedInputStream(socket.getInputStream());
      send(socket, put(data(image), OCTETS, "Content-Length: " + body.length), body);
      RawHttp.Response answer = readOne(in, false);
      assertThat(answer.status()).as(answer.toString()).isEqualTo(204);
      assertThat(answer.header("ETag")).isEqualTo(mainEtag(image));
    }
    applied(0, body);
    assertDiskIsModel();
  }

  @Test
  void a_put_without_content_type_or_labelled_as_a_form_is_taken_as_raw_bytes() throws IOException {
    byte[] plain = random(300, 13);
    byte[] form = random(300, 14);
    try (Socket socket = connect()) {
      InputStream in = new BufferedInputStream(socket.getInputStream());
      send(
          socket,
          put(
              data(image),
              "Content-Range: " + contentRange(1000, plain.length),
              "Content-Length: " + plain.length),
          plain,
          // What curl --data-binary sends.
          put(
              data(image),
              "Content-Type: application/x-www-form-urlencoded",
              "Content-Range: " + contentRange(2000, form.length),
              "Content-Length: " + form.length),
          form);
      assertThat(readOne(in, false).status()).isEqualTo(204);
      assertThat(readOne(in, false).status()).isEqualTo(204);
    }
    applied(1000, plain);
    applied(2000, form);
    assertDiskIsModel();
  }

  @Test
  void a_write_of_several_mib_at_an_unaligned_offset_is_written_whole() throws IOException {
    String large = createImage("dpw-large", 8 * MIB);
    // Not a whole number of MiB pieces, nor of sectors, and starting inside a sector.
    long offset = MIB + 777;
    byte[] body = random((int) (3 * MIB + 12_345), 21);
    try (Socket socket = connect()) {
      InputStream in = new BufferedInputStream(socket.getInputStream());
      send(socket, put(data(large), ranged(offset, body.length)), body);
      RawHttp.Response answer = readOne(in, false);
      assertThat(answer.status()).as(answer.toString()).isEqualTo(204);
      assertThat(answer.header("ETag")).isEqualTo(mainEtag(large));
    }
    byte[] expected = new byte[body.length + 2 * 4096];
    System.arraycopy(body, 0, expected, 4096, body.length);
    assertSameBytes(
        "the write and 4 KiB of zeros on each side",
        mainRead(large, offset - 4096, offset + body.length + 4095),
        expected);
  }

  @Test
  void if_match_with_the_current_etag_or_a_star_writes() throws IOException {
    byte[] first = random(100, 15);
    byte[] second = random(100, 16);
    try (Socket socket = connect()) {
      InputStream in = new BufferedInputStream(socket.getInputStream());
      send(socket, put(data(image), ranged(500, 100, "If-Match: " + mainEtag(image))), first);
      RawHttp.Response answer = readOne(in, false);
      assertThat(answer.status()).as(answer.toString()).isEqualTo(204);
      send(socket, put(data(image), ranged(600, 100, "If-Match: *")), second);
      assertThat(readOne(in, false).status()).isEqualTo(204);
    }
    applied(500, first);
    applied(600, second);
    assertDiskIsModel();
  }

  // ---- one connection ----

  @Test
  void pipelined_puts_and_a_get_are_answered_in_order_and_the_get_sees_the_second_write()
      throws IOException {
    byte[] first = random(50, 31);
    byte[] second = random(50, 32);
    try (Socket socket = connect()) {
      InputStream in = new BufferedInputStream(socket.getInputStream());
      // One write: both bodies and the GET's head wait in the server's buffer behind the first
      // head, so each body must be read to its length exactly for the next head to be found.
      send(
          socket,
          put(data(image), ranged(100, first.length)),
          first,
          put(data(image), ranged(120, second.length)),
          second,
          get(image, "bytes=90-179"));
      RawHttp.Response one = readOne(in, false);
      assertThat(one.status()).as(one.toString()).isEqualTo(204);
      RawHttp.Response two = readOne(in, false);
      assertThat(two.status()).as(two.toString()).isEqualTo(204);
      assertThat(two.header("ETag")).isNotEqualTo(one.header("ETag"));
      RawHttp.Response three = readOne(in, false);
      assertThat(three.status()).isEqualTo(206);
      applied(100, first);
      applied(120, second);
      // The second write overlaps the first: its bytes win from 120 on.
      assertThat(three.body()).isEqualTo(slice(90, 179));
      assertThat(three.header("ETag")).isEqualTo(two.header("ETag"));
    }
    assertDiskIsModel();
  }

  // ---- Expect: 100-continue ----

  /**
   * A body longer than the head buffer is read from the socket, not from the bytes that came in
   * with the head: the read must stop at its length, so the GET sent right behind it is found.
   */
  @Test
  void a_get_pipelined_behind_a_body_read_from_the_socket_is_answered() throws IOException {
    byte[] body = random(40_000, 33);
    try (Socket socket = connect()) {
      InputStream in = new BufferedInputStream(socket.getInputStream());
      send(
          socket,
          put(data(image), ranged(3000, body.length)),
          body,
          get(image, "bytes=3000-42999"),
          get(image, "bytes=0-9"));
      RawHttp.Response written = readOne(in, false);
      assertThat(written.status()).as(written.toString()).isEqualTo(204);
      applied(3000, body);
      RawHttp.Response read = readOne(in, false);
      assertThat(read.status()).isEqualTo(206);
      assertThat(read.body()).isEqualTo(body);
      assertThat(readOne(in, false).body()).isEqualTo(slice(0, 9));
    }
    assertDiskIsModel();
  }

  @Test
  void expect_100_continue_is_answered_before_the_body_is_sent_then_204() throws IOException {
    byte[] body = random(2000, 41);
    long offset = 1000;
    try (Socket socket = connect()) {
      InputStream in = new BufferedInputStream(socket.getInputStream());
      send(socket, put(data(image), ranged(offset, body.length, "Expect: 100-continue")));
      // Only the head is sent: without the interim answer this read times out and the test fails.
      RawHttp.Response interim = readOne(in, false);
      assertThat(interim.status()).as(interim.toString()).isEqualTo(100);
      send(socket, body);
      RawHttp.Response answer = readOne(in, false);
      assertThat(answer.status()).as(answer.toString()).isEqualTo(204);
      assertThat(answer.header("Connection")).isNull();
      applied(offset, body);
      // The same connection goes on: a second write with Expect gets its own 100.
      byte[] again = random(10, 42);
      send(socket, put(data(image), ranged(5000, again.length, "Expect: 100-continue")));
      assertThat(readOne(in, false).status()).isEqualTo(100);
      send(socket, again);
      assertThat(readOne(in, false).status()).isEqualTo(204);
      applied(5000, again);
      send(socket, get(image, "bytes=" + offset + "-" + (offset + body.length - 1)));
      assertThat(readOne(in, false).body()).isEqualTo(body);
    }
    assertDiskIsModel();
  }

  @Test
  void a_refused_write_with_expect_gets_its_final_status_without_100_and_the_connection_closed()
      throws IOException {
    String stale = mainEtag(image);
    writeMain(5000, pattern(10, 9));
    String current = mainEtag(image);
    String expect = "Expect: 100-continue";
    Object[][] cases = {
      {put(data(image), ranged(SIZE - 5, 10, expect)), 416, "range-not-satisfiable"},
      {
        put(
            data(image),
            "Content-Type: text/plain",
            "Content-Range: " + contentRange(0, 10),
            "Content-Length: 10",
            expect),
        415,
        "unsupported-media-type"
      },
      {put(data(image), ranged(0, 10, "If-Match: " + stale, expect)), 412, "precondition-failed"},
      {put(data(image) + "?flush=maybe", ranged(0, 10, expect)), 400, "bad-request"},
      {put(data(uniqueName("missing")), ranged(0, 10, expect)), 404, "image-not-found"}
    };
    for (Object[] c : cases) {
      String head = (String) c[0];
      try (Socket socket = connect()) {
        InputStream in = new BufferedInputStream(socket.getInputStream());
        send(socket, head);
        // The body is never sent: the answer must come without it, and be final.
        RawHttp.Response answer = readOne(in, false);
        assertThat(answer.status()).as(head).isEqualTo(c[1]);
        assertThat(problem(answer)).as(head).containsEntry("type", PROBLEMS + c[2]);
        // The announced body was never read, so no next head could be found behind it.
        assertThat(answer.header("Connection")).as(head).isEqualTo("close");
        assertClosedByServer(in);
      }
    }
    assertThat(mainEtag(image)).isEqualTo(current);
    assertDiskIsModel();
  }

  // ---- refusals ----

  /** A write the data port refuses, and whether the refusal leaves the connection open. */
  private record Refusal(
      String what, String head, byte[] body, int status, String type, boolean closes) {}

  private List<Refusal> refusals(String stale) {
    byte[] ten = random(10, 51);
    String path = data(image);
    return List.of(
        new Refusal(
            "a chunked body",
            put(
                path,
                OCTETS,
                "Content-Range: " + contentRange(100, 10),
                "Transfer-Encoding: chunked"),
            RawHttp.chunked(ten, 4),
            411,
            "length-required",
            true),
        new Refusal(
            "no Content-Length and no body",
            put(path, OCTETS, "Content-Range: " + contentRange(100, 10)),
            new byte[0],
            411,
            "length-required",
            // Nothing announced is left unread, so the next head can be found.
            false),
        new Refusal(
            "text/plain",
            put(
                path,
                "Content-Type: text/plain",
                "Content-Range: bytes 100-109/*",
                "Content-Length: 10"),
            ten,
            415,
            "unsupported-media-type",
            true),
        new Refusal(
            "application/json",
            put(
                path,
                "Content-Type: application/json",
                "Content-Range: bytes 100-109/*",
                "Content-Length: 10"),
            ten,
            415,
            "unsupported-media-type",
            true),
        new Refusal(
            "a range past the end",
            put(path, ranged(SIZE - 5, 10)),
            ten,
            416,
            "range-not-satisfiable",
            true),
        new Refusal(
            "a complete length not the disk's",
            put(path, OCTETS, "Content-Range: bytes 100-109/12345", "Content-Length: 10"),
            ten,
            416,
            "range-not-satisfiable",
            true),
        new Refusal(
            "a Content-Range without complete length",
            put(path, OCTETS, "Content-Range: bytes 100-109", "Content-Length: 10"),
            ten,
            400,
            "bad-request",
            true),
        new Refusal(
            "a Content-Range that ends before it starts",
            put(path, OCTETS, "Content-Range: bytes 109-100/*", "Content-Length: 10"),
            ten,
            400,
            "bad-request",
            true),
        new Refusal(
            "a Content-Length unlike the range's",
            put(path, OCTETS, "Content-Range: bytes 100-119/*", "Content-Length: 10"),
            ten,
            400,
            "bad-request",
            true),
        new Refusal(
            "flush=maybe",
            put(path + "?flush=maybe", ranged(100, 10)),
            ten,
            400,
            "bad-request",
            true),
        new Refusal(
            "a query other than flush",
            put(path + "?offset=100", ranged(100, 10)),
            ten,
            400,
            "bad-request",
            true),
        new Refusal(
            "flush given twice",
            put(path + "?flush=false&flush=true", ranged(100, 10)),
            ten,
            400,
            "bad-request",
            true),
        new Refusal(
            "a stale If-Match",
            put(path, ranged(100, 10, "If-Match: " + stale)),
            ten,
            412,
            "precondition-failed",
            true),
        new Refusal(
            "an If-Match that is no entity tag",
            put(path, ranged(100, 10, "If-Match: unquoted")),
            ten,
            400,
            "bad-request",
            true),
        new Refusal(
            "a Content-Digest that is no dictionary",
            put(path, ranged(100, 10, "Content-Digest: not a digest")),
            ten,
            400,
            "bad-request",
            true),
        new Refusal(
            "a Content-Digest of no supported algorithm",
            put(path, ranged(100, 10, "Content-Digest: md5=:AAAAAAAAAAAAAAAAAAAAAA==:")),
            ten,
            400,
            "bad-request",
            true));
  }

  @Test
  void a_refused_write_changes_nothing_and_closes_when_its_body_was_left_unread()
      throws IOException {
    String stale = mainEtag(image);
    writeMain(5000, pattern(10, 9));
    String etag = mainEtag(image);
    for (Refusal refusal : refusals(stale)) {
      try (Socket socket = connect()) {
        InputStream in = new BufferedInputStream(socket.getInputStream());
        send(socket, refusal.head(), refusal.body());
        RawHttp.Response answer = readOne(in, false);
        assertThat(answer.status()).as(refusal.what() + ": " + answer).isEqualTo(refusal.status());
        assertThat(problem(answer))
            .as(refusal.what())
            .containsEntry("type", PROBLEMS + refusal.type())
            .containsEntry("status", refusal.status())
            .containsEntry("instance", data(image));
        if (refusal.closes()) {
          // The body is still in the server's buffer; the next head cannot be found behind it.
          assertThat(answer.header("Connection")).as(refusal.what()).isEqualTo("close");
          assertClosedByServer(in);
        } else {
          assertThat(answer.header("Connection")).as(refusal.what()).isNull();
          send(socket, get(image, "bytes=100-109"));
          assertThat(readOne(in, false).body()).as(refusal.what()).isEqualTo(slice(100, 109));
        }
      }
      assertThat(mainEtag(image)).as(refusal.what()).isEqualTo(etag);
    }
    assertDiskIsModel();
  }

  /**
   * A client streaming an upload hears an early refusal while it still sends. Were the socket
   * closed with its body unread, the kernel would answer with a reset, which can destroy the answer
   * before the client reads it; the port reads and drops the rest (up to 2 MiB) after a FIN
   * instead.
   */
  @Test
  void a_refused_write_whose_body_is_still_coming_gets_its_answer_not_a_reset() throws Exception {
    byte[] body = random(1536 << 10, 91);
    try (Socket socket = connect()) {
      InputStream in = new BufferedInputStream(socket.getInputStream());
      CompletableFuture<Void> sending =
          CompletableFuture.runAsync(
              () -> {
                try {
                  send(
                      socket,
                      put(
                          data(image),
                          "Content-Type: text/plain",
                          "Content-Length: " + body.length),
                      body);
                } catch (IOException e) {
                  throw new UncheckedIOException(e);
                }
              });
      RawHttp.Response answer = readOne(in, false);
      assertThat(answer.status()).isEqualTo(415);
      assertThat(answer.header("Connection")).isEqualTo("close");
      sending.get(30, TimeUnit.SECONDS);
      // A clean end of the stream, not a reset (which assertClosedByServer would let pass).
      assertThat(in.read()).isEqualTo(-1);
    }
    assertDiskIsModel();
  }

  @Test
  void a_write_to_a_missing_image_is_404_and_creates_nothing() throws IOException {
    String missing = uniqueName("missing");
    try (Socket socket = connect()) {
      InputStream in = new BufferedInputStream(socket.getInputStream());
      send(socket, put(data(missing), ranged(0, 10)), random(10, 52));
      RawHttp.Response answer = readOne(in, false);
      assertThat(answer.status()).isEqualTo(404);
      assertThat(problem(answer))
          .containsEntry("type", PROBLEMS + "image-not-found")
          .containsEntry("instance", data(missing));
    }
    raw().get(IMAGES + "/" + missing).then().statusCode(404);
  }

  @Test
  void a_content_digest_mismatch_is_400_writes_nothing_and_the_connection_stays_usable()
      throws IOException {
    String etag = mainEtag(image);
    byte[] body = random(3000, 61);
    long offset = 71_000;
    try (Socket socket = connect()) {
      InputStream in = new BufferedInputStream(socket.getInputStream());
      send(
          socket,
          put(data(image), ranged(offset, body.length, contentDigest(random(3000, 62)))),
          body);
      RawHttp.Response refused = readOne(in, false);
      assertThat(refused.status()).as(refused.toString()).isEqualTo(400);
      assertThat(problem(refused))
          .containsEntry("type", PROBLEMS + "digest-mismatch")
          .containsEntry("instance", data(image));
      // The body was read whole before it was found wrong: the connection carries on.
      assertThat(refused.header("Connection")).isNull();
      assertThat(mainEtag(image)).isEqualTo(etag);
      assertDiskIsModel();

      send(socket, put(data(image), ranged(offset, body.length, contentDigest(body))), body);
      RawHttp.Response written = readOne(in, false);
      assertThat(written.status()).as(written.toString()).isEqualTo(204);
      assertThat(written.header("ETag")).isNotEqualTo(etag).isEqualTo(mainEtag(image));
      applied(offset, body);
      send(socket, get(image, "bytes=" + offset + "-" + (offset + body.length - 1)));
      assertThat(readOne(in, false).body()).isEqualTo(body);
    }
    assertDiskIsModel();
  }

  @Test
  void a_content_digest_over_a_mib_is_staged_and_checked_before_anything_is_written()
      throws IOException {
    String large = createImage("dpw-staged", 4 * MIB);
    // Longer than a buffer, so the body waits in a staging file rather than in memory.
    long offset = 3 * 512 + 5;
    byte[] body = random((int) (MIB + MIB / 2 + 3), 63);
    try (Socket socket = connect()) {
      InputStream in = new BufferedInputStream(socket.getInputStream());
      byte[] wrong = body.clone();
      wrong[body.length - 1] ^= 1;
      send(socket, put(data(large), ranged(offset, body.length, contentDigest(wrong))), body);
      RawHttp.Response refused = readOne(in, false);
      assertThat(refused.status()).as(refused.toString()).isEqualTo(400);
      assertThat(problem(refused)).containsEntry("type", PROBLEMS + "digest-mismatch");
      assertThat(refused.header("Connection")).isNull();
      // Not even the first MiB, which had arrived long before the mismatch was known.
      assertSameBytes(
          "the disk after a refused staged write",
          mainRead(large, 0, 4 * MIB - 1),
          new byte[(int) (4 * MIB)]);

      send(socket, put(data(large), ranged(offset, body.length, contentDigest(body))), body);
      RawHttp.Response written = readOne(in, false);
      assertThat(written.status()).as(written.toString()).isEqualTo(204);
      assertThat(written.header("ETag")).isEqualTo(mainEtag(large));
    }
    byte[] expected = new byte[(int) (4 * MIB)];
    System.arraycopy(body, 0, expected, (int) offset, body.length);
    assertSameBytes("the disk after the staged write", mainRead(large, 0, 4 * MIB - 1), expected);
  }

  @Test
  void a_stale_if_match_with_a_content_digest_is_412_after_the_body_and_the_connection_stays()
      throws IOException {
    String stale = mainEtag(image);
    writeMain(5000, pattern(10, 9));
    String etag = mainEtag(image);
    byte[] body = random(100, 64);
    try (Socket socket = connect()) {
      InputStream in = new BufferedInputStream(socket.getInputStream());
      // With a digest the body is staged first and the If-Match checked only then, so the
      // refusal comes after the body was read and nothing is left unread on the connection.
      send(
          socket,
          put(data(image), ranged(100, body.length, contentDigest(body), "If-Match: " + stale)),
          body);
      RawHttp.Response refused = readOne(in, false);
      assertThat(refused.status()).as(refused.toString()).isEqualTo(412);
      assertThat(problem(refused)).containsEntry("type", PROBLEMS + "precondition-failed");
      assertThat(refused.header("Connection")).isNull();
      assertThat(mainEtag(image)).isEqualTo(etag);
      send(socket, get(image, "bytes=100-199"));
      assertThat(readOne(in, false).body()).isEqualTo(slice(100, 199));
    }
    assertDiskIsModel();
  }

  // ---- bodies cut short ----

  @Test
  void a_body_cut_short_writes_nothing_and_is_answered_400_not_recorded_as_a_500()
      throws Exception {
    String etag = mainEtag(image);
    double errorsBefore = countPut("500");
    double refusedBefore = countPut("400");
    try (Socket socket = connect()) {
      send(socket, put(data(image), ranged(100, 10)), random(4, 71));
      socket.shutdownOutput();
      // The server sees the end of the body after 4 of 10 bytes; its answer ends the connection.
      RawHttp.Response answer = RawHttp.read(socket.getInputStream(), false);
      assertThat(answer.status()).as(answer.toString()).isEqualTo(400);
      assertThat(answer.header("Connection")).isEqualTo("close");
      assertThat(problem(answer))
          .containsEntry("type", PROBLEMS + "bad-request")
          .containsEntry("instance", data(image));
      assertThat((String) problem(answer).get("detail"))
          .contains("4 of the 10 bytes")
          .contains("the first 0 bytes were written");
    }
    assertThat(mainEtag(image)).isEqualTo(etag);
    assertDiskIsModel();
    // The record is made after the answer is sent; wait for it before looking for a 500 beside it.
    long deadline = System.nanoTime() + 10_000_000_000L;
    while (countPut("400") == refusedBefore && System.nanoTime() < deadline) {
      Thread.sleep(50);
    }
    assertThat(countPut("400") - refusedBefore).as("the PUT recorded as 400").isEqualTo(1);
    assertThat(countPut("500")).as("no 500 recorded").isEqualTo(errorsBefore);
  }

  @Test
  void a_long_body_cut_short_writes_only_the_whole_mib_pieces_that_arrived() throws IOException {
    String large = createImage("dpw-cut", 4 * MIB);
    long offset = 1000;
    long announced = 2 * MIB + MIB / 2;
    byte[] sent = random((int) (MIB + MIB / 2), 72);
    try (Socket socket = connect()) {
      send(socket, put(data(large), ranged(offset, announced)), sent);
      socket.shutdownOutput();
      RawHttp.Response answer = RawHttp.read(socket.getInputStream(), false);
      assertThat(answer.status()).as(answer.toString()).isEqualTo(400);
      assertThat((String) problem(answer).get("detail"))
          .contains("the first " + MIB + " bytes were written");
    }
    // The first piece arrived whole and was written; the half piece after it was not.
    byte[] expected = new byte[(int) (4 * MIB)];
    System.arraycopy(sent, 0, expected, (int) offset, (int) MIB);
    assertSameBytes("the disk after a cut-short write", mainRead(large, 0, 4 * MIB - 1), expected);
  }

  /**
   * The count of answers with {@code status} to PUT of the data path, summed over every other tag
   * (both ports record under the same name).
   */
  private double countPut(String status) {
    String scrape = raw().get("/actuator/prometheus").then().statusCode(200).extract().asString();
    return scrape
        .lines()
        .filter(
            line ->
                line.startsWith("http_server_requests_seconds_count{")
                    && line.contains("method=\"PUT\"")
                    && line.contains("status=\"" + status + "\"")
                    && line.contains("uri=\"/api/v1/images/{name}/data\""))
        .mapToDouble(line -> Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1)))
        .sum();
  }

  // ---- the same answers from both ports ----

  @Test
  void refused_writes_get_the_same_status_and_problem_on_both_ports() throws IOException {
    String etag = mainEtag(image);
    byte[] ten = random(10, 81);
    Object[][] cases = {
      {
        "text/plain",
        data(image),
        headers("text/plain", "bytes 100-109/*", ten),
        ten,
        415,
        "unsupported-media-type"
      },
      {
        "complete length",
        data(image),
        headers(null, "bytes 100-109/12345", ten),
        ten,
        416,
        "range-not-satisfiable"
      },
      {
        "malformed range", data(image), headers(null, "bytes 100-109", ten), ten, 400, "bad-request"
      },
      {
        "backwards range",
        data(image),
        headers(null, "bytes 109-100/*", ten),
        ten,
        400,
        "bad-request"
      },
      {
        "length unlike range",
        data(image),
        headers(null, "bytes 100-119/*", ten),
        ten,
        400,
        "bad-request"
      },
      {
        "flush=maybe",
        data(image) + "?flush=maybe",
        headers(null, "bytes 100-109/*", ten),
        ten,
        400,
        "bad-request"
      },
      {
        "missing image",
        data(uniqueName("missing")),
        headers(null, "bytes 100-109/*", ten),
        ten,
        404,
        "image-not-found"
      },
      {
        "digest mismatch",
        data(image),
        with(
            headers(null, "bytes 100-109/*", ten),
            "Content-Digest",
            contentDigest(random(10, 82)).substring("Content-Digest: ".length())),
        ten,
        400,
        "digest-mismatch"
      }
    };
    for (Object[] c : cases) {
      @SuppressWarnings("unchecked")
      Map<String, String> headers = (Map<String, String>) c[2];
      DataPortHttp.Pair answers =
          assertSameOnBothPorts(
              port, dataPort.port(), "PUT", (String) c[1], headers, (byte[]) c[3], false);
      assertThat(answers.data().status()).as((String) c[0]).isEqualTo(c[4]);
      // Problem members (type, title, status, instance, extensions) were compared above; the
      // type is named here too, so that both ports cannot agree on a wrong one.
      assertThat(problem(answers.data())).as((String) c[0]).containsEntry("type", PROBLEMS + c[5]);
      assertThat(mainEtag(image)).as((String) c[0]).isEqualTo(etag);
    }
    assertDiskIsModel();
  }

  /**
   * A range past the end of the disk is refused 416 on both ports, and the main port names the
   * disk's size in {@code Content-Range} as it does for every 416 (RFC 9110, section 14.4); so does
   * the data port.
   */
  @Test
  void a_write_past_the_end_is_the_same_416_with_the_disk_size_on_both_ports() throws IOException {
    byte[] ten = random(10, 84);
    RawHttp.Response data =
        assertSameOnBothPorts(
                port,
                dataPort.port(),
                "PUT",
                data(image),
                headers(null, contentRange(SIZE - 5, 10), ten),
                ten,
                true)
            .data();
    assertThat(data.status()).isEqualTo(416);
    assertThat(data.header("Content-Range")).isEqualTo("bytes */" + SIZE);
    assertThat(problem(data))
        .containsEntry("type", PROBLEMS + "range-not-satisfiable")
        .containsEntry("sizeBytes", (int) SIZE);
    assertDiskIsModel();
  }

  /**
   * A stale {@code If-Match} is 412 on both ports, and the problem is the main port's: the image's
   * current tag in {@code etag} and the HTTP wording, as {@code ProblemAdvice} makes it from the
   * service's version mismatch ({@code PreconditionFailedException.of}).
   */
  @Test
  void a_stale_if_match_is_the_same_412_problem_on_both_ports() throws IOException {
    String stale = mainEtag(image);
    writeMain(5000, pattern(10, 9));
    String etag = mainEtag(image);
    byte[] ten = random(10, 85);
    RawHttp.Response data =
        assertSameOnBothPorts(
                port,
                dataPort.port(),
                "PUT",
                data(image),
                with(headers(null, "bytes 100-109/*", ten), "If-Match", stale),
                ten,
                true)
            .data();
    assertThat(data.status()).isEqualTo(412);
    assertThat(problem(data))
        .containsEntry("type", PROBLEMS + "precondition-failed")
        .containsEntry("etag", etag.substring(1, etag.length() - 1));
    assertThat(mainEtag(image)).isEqualTo(etag);
    assertDiskIsModel();
  }

  @Test
  void a_write_is_204_with_the_new_etag_on_both_ports() throws IOException {
    byte[] body = random(700, 83);
    for (int door : new int[] {port, dataPort.port()}) {
      RawHttp.Response answer =
          RawHttp.exchange(
              door, "PUT", data(image), headers(null, contentRange(9000, 700), body), body);
      assertThat(answer.status()).as("port %d: %s", door, answer).isEqualTo(204);
      assertThat(answer.body()).isEmpty();
      assertThat(answer.header("Content-Type")).isNull();
      assertThat(answer.header("ETag")).isEqualTo(mainEtag(image));
    }
    applied(9000, body);
    assertDiskIsModel();
  }

  private static Map<String, String> headers(
      @Nullable String contentType, String contentRange, byte[] body) {
    Map<String, String> headers = new LinkedHashMap<>();
    headers.put("Content-Type", contentType == null ? "application/octet-stream" : contentType);
    headers.put("Content-Range", contentRange);
    headers.put("Content-Length", String.valueOf(body.length));
    return headers;
  }

  private static Map<String, String> with(Map<String, String> headers, String name, String value) {
    headers.put(name, value);
    return headers;
  }
}
