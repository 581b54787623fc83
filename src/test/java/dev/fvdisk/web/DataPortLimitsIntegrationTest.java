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
import java.net.SocketException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

/**
 * The data port's limit of connections from one address ({@code
 * fvdisk.http-data.max-connections-per-peer}): a connection past it is closed unanswered, the ones
 * it had keep working, and closing one makes room again.
 */
class DataPortLimitsIntegrationTest extends ApiTestSupport {

  private static final int PER_PEER = 2;

  @DynamicPropertySource
  static void dataPortOn(DynamicPropertyRegistry registry) throws IOException {
    Path dir =
        Files.createTempDirectory(
            Files.createDirectories(Path.of("target", "it-data")), "data-port-limits-");
    registry.add("fvdisk.test.data-dir", dir::toString);
    registry.add("fvdisk.http-data.max-connections-per-peer", () -> "" + PER_PEER);
  }

  private Socket connect() throws IOException {
    Socket socket = RawHttp.connect(dataPort.port());
    socket.setSoTimeout(30_000);
    return socket;
  }

  /**
   * The value of the series in the Prometheus scrape that is {@code series}: a name alone, or a
   * name and the start of its labels.
   */
  private double meter(String series) {
    String scrape = raw().get("/actuator/prometheus").then().statusCode(200).extract().asString();
    return scrape
        .lines()
        .filter(
            line ->
                line.startsWith(series + " ")
                    || line.startsWith(series + (series.contains("{") ? "" : "{")))
        .mapToDouble(line -> Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1)))
        .findFirst()
        .orElseThrow(() -> new AssertionError("no series " + series + " in the scrape"));
  }

  @Test
  void a_connection_past_the_per_peer_limit_is_closed_unanswered() throws Exception {
    String image = createImage("limits", 1 << 20);
    byte[] content = pattern(4096, 6);
    write(image, 0, content);
    byte[] expected = Arrays.copyOfRange(content, 0, 100);
    Socket[] held = new Socket[PER_PEER];
    InputStream[] in = new InputStream[PER_PEER];
    try {
      for (int i = 0; i < PER_PEER; i++) {
        held[i] = connect();
        in[i] = new BufferedInputStream(held[i].getInputStream());
        // An answer shows the server took the connection (and counts it) before the next one.
        send(held[i], get(image, "bytes=0-99"));
        assertThat(readOne(in[i], false).body()).isEqualTo(expected);
      }
      assertThat(meter("fvdisk_data_port_connections"))
          .as("connections open, as the gauge says")
          .isGreaterThanOrEqualTo(PER_PEER);
      double refusedBefore = meter("fvdisk_data_port_connections_dropped_total{reason=\"limit\"");
      try (Socket extra = connect()) {
        InputStream extraIn = new BufferedInputStream(extra.getInputStream());
        try {
          send(extra, get(image, "bytes=0-99"));
        } catch (SocketException alreadyClosed) {
          // The server may have closed it before the request went out.
        }
        assertClosedByServer(extraIn);
      }
      assertThat(meter("fvdisk_data_port_connections_dropped_total{reason=\"limit\""))
          .as("refusals at the limit counted")
          .isEqualTo(refusedBefore + 1);
      for (int i = 0; i < PER_PEER; i++) {
        send(held[i], get(image, "bytes=0-99"));
        RawHttp.Response answer = readOne(in[i], false);
        assertThat(answer.status()).isEqualTo(206);
        assertThat(answer.body()).isEqualTo(expected);
      }
    } finally {
      for (Socket socket : held) {
        if (socket != null) {
          socket.close();
        }
      }
    }
    // Once the server has seen them go, there is room again; it notices the close on its own
    // thread, so a new connection may still be refused for a moment.
    long deadline = System.nanoTime() + 30_000_000_000L;
    RawHttp.Response answer = null;
    while (answer == null && System.nanoTime() < deadline) {
      try (Socket again = connect()) {
        InputStream againIn = new BufferedInputStream(again.getInputStream());
        send(again, get(image, "bytes=0-99"));
        answer = readOne(againIn, false);
      } catch (IOException refused) {
        Thread.sleep(50);
      }
    }
    assertThat(answer).as("an answer once the held connections were closed").isNotNull();
    assertThat(answer.status()).isEqualTo(206);
    assertThat(answer.body()).isEqualTo(expected);
  }
}
