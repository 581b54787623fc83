package dev.fvdisk.testing;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import org.jspecify.annotations.Nullable;
import tools.jackson.databind.json.JsonMapper;

/**
 * Helpers for tests of the data port ({@code fvdisk.http-data.*}), the second HTTP listener that
 * answers GET, HEAD and PUT of image data: the same request sent to the main port and to the data
 * port with their answers compared, and answers read one at a time off a connection that stays
 * open.
 */
public final class DataPortHttp {

  /** The headers both ports must give alike. */
  public static final List<String> COMPARED_HEADERS =
      List.of(
          "Content-Type",
          "Accept-Ranges",
          "ETag",
          "Content-Range",
          "Content-Length",
          "Content-Digest",
          "WWW-Authenticate",
          "Location");

  private static final JsonMapper JSON = JsonMapper.builder().build();

  private DataPortHttp() {}

  /** The two answers to one request, from the main port and from the data port. */
  public record Pair(RawHttp.Response main, RawHttp.Response data) {}

  /**
   * Sends the request to both ports (a connection each, {@code Connection: close}) and asserts that
   * the answers agree: status, {@link #COMPARED_HEADERS}, and the body, byte for byte for data and
   * member for member for a problem (the detail too unless {@code compareDetail} is false).
   */
  public static Pair assertSameOnBothPorts(
      int mainPort,
      int dataPort,
      String method,
      String target,
      Map<String, String> headers,
      boolean compareDetail)
      throws IOException {
    return assertSameOnBothPorts(
        mainPort, dataPort, method, target, headers, new byte[0], compareDetail);
  }

  /**
   * As {@link #assertSameOnBothPorts(int, int, String, String, Map, boolean)}, with a request body
   * sent right after the head; {@code headers} must frame it (a {@code Content-Length}).
   */
  public static Pair assertSameOnBothPorts(
      int mainPort,
      int dataPort,
      String method,
      String target,
      Map<String, String> headers,
      byte[] body,
      boolean compareDetail)
      throws IOException {
    RawHttp.Response main = RawHttp.exchange(mainPort, method, target, headers, body);
    RawHttp.Response data = RawHttp.exchange(dataPort, method, target, headers, body);
    assertSameAnswer(method + " " + target + " " + headers, main, data, compareDetail);
    return new Pair(main, data);
  }

  /** Asserts that two answers to the same request agree, as {@link #assertSameOnBothPorts}. */
  public static void assertSameAnswer(
      String what, RawHttp.Response main, RawHttp.Response data, boolean compareDetail) {
    String context = what + "\n  main port: " + main + "\n  data port: " + data;
    assertThat(data.status()).as("status of " + context).isEqualTo(main.status());
    String type = main.header("Content-Type");
    boolean isProblem = type != null && type.startsWith("application/problem+json");
    for (String header : COMPARED_HEADERS) {
      if (header.equals("Content-Length")
          && isProblem
          && (!compareDetail || main.header(header) == null)) {
        // The main port sends problems chunked, and a detail of its own has its own length; the
        // data port frames its problems by their length.
        if (data.body().length > 0) {
          assertThat(data.header(header))
              .as(header + " of " + context)
              .isEqualTo(String.valueOf(data.body().length));
        }
        continue;
      }
      assertThat(data.header(header)).as(header + " of " + context).isEqualTo(main.header(header));
    }
    if (isProblem && main.body().length > 0) {
      Map<String, Object> mainProblem = problem(main);
      Map<String, Object> dataProblem = problem(data);
      if (!compareDetail) {
        assertThat(dataProblem).as("data port problem of " + context).containsKey("detail");
        mainProblem.remove("detail");
        dataProblem.remove("detail");
      }
      assertThat(dataProblem).as("problem members of " + context).isEqualTo(mainProblem);
    } else {
      assertThat(data.body()).as("body of " + context).isEqualTo(main.body());
    }
  }

  /** The members of a problem answer's JSON body. */
  public static Map<String, Object> problem(RawHttp.Response answer) {
    assertThat(answer.header("Content-Type"))
        .as("Content-Type of " + answer)
        .startsWith("application/problem+json");
    @SuppressWarnings("unchecked")
    Map<String, Object> members = JSON.readValue(answer.body(), LinkedHashMap.class);
    return members;
  }

  /**
   * Reads one answer off a connection that may carry more, framed by its {@code Content-Length}
   * (the data port sends one with every answer that may have a body); the body is empty for an
   * answer to HEAD, for an interim answer ({@code 100 Continue}) and for {@code 204}, which have
   * none. Pass the same (buffered) stream to every call on one connection.
   *
   * @throws EOFException when the connection ends before the answer is whole
   */
  public static RawHttp.Response readOne(InputStream in, boolean headRequest) throws IOException {
    ByteArrayOutputStream head = new ByteArrayOutputStream();
    int matched = 0;
    while (matched < 4) {
      int b = in.read();
      if (b < 0) {
        throw new EOFException(
            "the connection ended after "
                + head.size()
                + " bytes of an answer's head: "
                + head.toString(StandardCharsets.ISO_8859_1));
      }
      head.write(b);
      matched = (b == (matched % 2 == 0 ? '\r' : '\n')) ? matched + 1 : (b == '\r' ? 1 : 0);
    }
    String[] lines = head.toString(StandardCharsets.ISO_8859_1).split("\r\n");
    String[] statusLine = lines[0].split(" ");
    assertThat(statusLine[0]).as("status line " + lines[0]).isEqualTo("HTTP/1.1");
    int status = Integer.parseInt(statusLine[1]);
    Map<String, String> headers = new TreeMap<>();
    for (int i = 1; i < lines.length; i++) {
      int colon = lines[i].indexOf(':');
      headers.merge(
          lines[i].substring(0, colon).trim().toLowerCase(Locale.ROOT),
          lines[i].substring(colon + 1).trim(),
          (a, b) -> a + ", " + b);
    }
    if (status / 100 == 1 || status == 204 || status == 304) {
      // No body by definition (RFC 9110, sections 15.2, 15.3.5 and 15.4.5).
      return new RawHttp.Response(status, headers, new byte[0]);
    }
    String length = headers.get("content-length");
    assertThat(length).as("Content-Length of " + lines[0] + " " + headers).isNotNull();
    byte[] body = headRequest ? new byte[0] : in.readNBytes(Integer.parseInt(length));
    if (body.length < (headRequest ? 0 : Integer.parseInt(length))) {
      throw new EOFException(
          "the connection ended after " + body.length + " of " + length + " body bytes");
    }
    return new RawHttp.Response(status, headers, body);
  }

  /**
   * Asserts that the server has closed the connection: a read finds its end (-1), or the server
   * reset it (which the kernel does when the server closes with bytes of the client's unread). Any
   * byte read fails the assertion; a read that times out throws, so an open connection never passes
   * as closed.
   */
  public static void assertClosedByServer(InputStream in) throws IOException {
    try {
      int b = in.read();
      if (b >= 0) {
        byte[] rest = in.readNBytes(Math.min(in.available(), 500));
        throw new AssertionError(
            "expected the connection to be closed, but it sent: "
                + (char) b
                + new String(rest, StandardCharsets.ISO_8859_1));
      }
    } catch (SocketException e) {
      if (e.getMessage() == null || !e.getMessage().toLowerCase(Locale.ROOT).contains("reset")) {
        throw e;
      }
    }
  }

  /** Writes {@code text} (ISO-8859-1) to the socket at once. */
  public static void send(Socket socket, String text) throws IOException {
    socket.getOutputStream().write(text.getBytes(StandardCharsets.ISO_8859_1));
    socket.getOutputStream().flush();
  }

  /** A request head for the data path of {@code image}, with Host, ended by its blank line. */
  public static String get(String image, @Nullable String range) {
    return "GET /api/v1/images/"
        + image
        + "/data HTTP/1.1\r\nHost: localhost\r\n"
        + (range == null ? "" : "Range: " + range + "\r\n")
        + "\r\n";
  }
}
