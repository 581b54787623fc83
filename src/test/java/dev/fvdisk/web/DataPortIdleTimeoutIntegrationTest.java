package dev.fvdisk.web;

import static dev.fvdisk.testing.DataPortHttp.assertClosedByServer;
import static dev.fvdisk.testing.DataPortHttp.get;
import static dev.fvdisk.testing.DataPortHttp.readOne;
import static dev.fvdisk.testing.DataPortHttp.send;
import static org.assertj.core.api.Assertions.assertThat;

import dev.fvdisk.testing.RawHttp;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

/**
 * The data port's idle and stall timeouts ({@code fvdisk.http-data.idle-timeout}, {@code
 * stall-timeout}): a connection that sends no request, only part of a head, or only part of a
 * write's body, is closed by the server. The only timing here is a read timeout far longer than
 * both.
 */
class DataPortIdleTimeoutIntegrationTest extends ApiTestSupport {

  /** Far past the one-second idle timeout: a read that waits this long finds the server asleep. */
  private static final int READ_TIMEOUT_MILLIS = 20_000;

  @DynamicPropertySource
  static void dataPortOn(DynamicPropertyRegistry registry) throws IOException {
    Path dir =
        Files.createTempDirectory(
            Files.createDirectories(Path.of("target", "it-data")), "data-port-idle-");
    registry.add("fvdisk.test.data-dir", dir::toString);
    registry.add("fvdisk.http-data.idle-timeout", () -> "1s");
    registry.add("fvdisk.http-data.stall-timeout", () -> "1s");
  }

  private Socket connect() throws IOException {
    Socket socket = RawHttp.connect(dataPort.port());
    socket.setSoTimeout(READ_TIMEOUT_MILLIS);
    return socket;
  }

  @Test
  void an_idle_connection_after_an_answer_is_closed_by_the_server() throws IOException {
    String image = createImage("idle", 1 << 20);
    write(image, 0, pattern(100, 2));
    try (Socket socket = connect()) {
      InputStream in = new BufferedInputStream(socket.getInputStream());
      send(socket, get(image, "bytes=0-99"));
      RawHttp.Response answer = readOne(in, false);
      assertThat(answer.status()).isEqualTo(206);
      assertThat(answer.body()).isEqualTo(pattern(100, 2));
      assertClosedByServer(in);
    }
  }

  @Test
  void a_connection_that_never_sends_is_closed_by_the_server() throws IOException {
    try (Socket socket = connect()) {
      assertClosedByServer(new BufferedInputStream(socket.getInputStream()));
    }
  }

  @Test
  void a_head_that_never_ends_is_closed_by_the_server_unanswered() throws IOException {
    try (Socket socket = connect()) {
      send(socket, "GET /api/v1/images/any/data HTTP/1.1\r\nHost: localhost\r\n");
      assertClosedByServer(new BufferedInputStream(socket.getInputStream()));
    }
  }

  @Test
  void a_write_whose_body_stops_coming_is_cut_off_and_writes_nothing() throws IOException {
    String image = createImage("stall", 1 << 20);
    write(image, 0, pattern(100, 2));
    try (Socket socket = connect()) {
      // 10 of the 100 bytes announced, then nothing: the server waits in the body, where the idle
      // timeout does not reach, so only the stall watchdog can end the wait.
      send(
          socket,
          "PUT /api/v1/images/"
              + image
              + "/data HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\n"
              + "Content-Range: bytes 0-99/*\r\nContent-Length: 100\r\n\r\n"
              + "0123456789");
      assertClosedByServer(new BufferedInputStream(socket.getInputStream()));
    }
    // A body of up to a buffer that ends early is not written at all.
    assertThat(read(image, 0, 100)).isEqualTo(pattern(100, 2));
  }
}
