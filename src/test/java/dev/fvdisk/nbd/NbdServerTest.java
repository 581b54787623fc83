package dev.fvdisk.nbd;

import static dev.fvdisk.nbd.Nbd.*;
import static org.assertj.core.api.Assertions.assertThat;

import dev.fvdisk.service.Access;
import dev.fvdisk.service.CreateImageCommand;
import dev.fvdisk.service.ImageDirectory;
import dev.fvdisk.service.ImageService;
import dev.fvdisk.service.ServiceLimits;
import dev.fvdisk.service.VirtualDisk;
import java.io.EOFException;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The server over a real service on real files, without Spring: stopping it while requests are in
 * flight, and the limits on connections.
 */
class NbdServerTest {

  private static final ServiceLimits LIMITS =
      new ServiceLimits(1L << 40, null, 65536, 0, 4096, 1000, 16);
  private static final long SIZE = 16 << 20;

  @TempDir Path dir;
  private ImageService service;
  private NbdServer server;

  @BeforeEach
  void start() throws IOException {
    service = new ImageService(new ImageDirectory(dir), LIMITS);
    service.create(new CreateImageCommand("vm", SIZE, null, null, null, null, null, null));
    server = startServer(NbdLimits.DEFAULTS);
  }

  private NbdServer startServer(NbdLimits limits) throws IOException {
    NbdServer s =
        new NbdServer(
            service,
            new InetSocketAddress(InetAddress.getLoopbackAddress(), 0),
            limits,
            NbdObserver.NONE,
            null);
    s.start();
    return s;
  }

  /** Restarts the server with 1 MiB requests and the given limits. */
  private void restartWith(
      int connections, int perPeer, int requests, int inFlightBytes, Duration stallTimeout)
      throws IOException {
    server.stop(Duration.ofSeconds(5));
    server =
        startServer(
            new NbdLimits(
                connections,
                perPeer,
                Duration.ofSeconds(10),
                32,
                65536,
                1 << 20,
                requests,
                inFlightBytes,
                stallTimeout));
  }

  @AfterEach
  void stop() {
    server.stop(Duration.ofSeconds(10));
    service.close();
  }

  /**
   * Every write sent before the stop is answered, with success or ESHUTDOWN, before the connection
   * closes; each one answered with success is in the image afterwards, read by a fresh service.
   */
  @RepeatedTest(10)
  void stopping_answers_every_request_in_flight_and_keeps_every_answered_write() throws Exception {
    Map<Long, byte[]> sent = new HashMap<>();
    Map<Long, Integer> answers = new HashMap<>();
    Random random = new Random();
    try (NbdTestClient client = NbdTestClient.open(server.port(), "vm")) {
      for (long cookie = 0; cookie < 32; cookie++) {
        byte[] data = new byte[64 * 1024];
        random.nextBytes(data);
        sent.put(cookie, data);
        client.send(0, CMD_WRITE, cookie, cookie * data.length, data.length, data);
      }
      client.flushOut();
      CompletableFuture<Void> stopping =
          CompletableFuture.runAsync(() -> server.stop(Duration.ofSeconds(10)));
      try {
        while (answers.size() < sent.size()) {
          Transcript.Reply r = client.reply();
          assertThat(answers.put(r.cookie(), r.error())).as("one answer per request").isNull();
        }
      } catch (EOFException | SocketException e) {
        // The connection closed: only after every request read was answered, checked below.
      }
      stopping.get();
      assertThat(closed(client)).as("the connection is closed after the stop").isTrue();
    }
    // Requests still unread in the socket when the server stopped get no answer; every request it
    // read did get one, and each was a success or ESHUTDOWN.
    assertThat(answers.values()).allMatch(e -> e == 0 || e == ESHUTDOWN);
    service.close();
    service = new ImageService(new ImageDirectory(dir), LIMITS);
    service.openAll();
    try (VirtualDisk disk = service.attach("vm", Access.READ_ONLY)) {
      for (Map.Entry<Long, Integer> a : answers.entrySet()) {
        if (a.getValue() == 0) {
          byte[] expected = sent.get(a.getKey());
          ByteBuffer back = ByteBuffer.allocate(expected.length);
          disk.read(a.getKey() * expected.length, back);
          assertThat(back.array()).as("write %d", a.getKey()).isEqualTo(expected);
        }
      }
    }
  }

  /**
   * Whether the server closed the connection: the end of the stream, or a reset, which is what a
   * close looks like when requests the server never read were still in its socket.
   */
  private static boolean closed(NbdTestClient client) throws IOException {
    try {
      return client.in.read() == -1;
    } catch (SocketException e) {
      return e.getMessage() != null && e.getMessage().contains("reset");
    }
  }

  @Test
  void connections_over_the_limit_are_closed_and_the_others_keep_working() throws Exception {
    restartWith(3, 2, 4, 1 << 20, Duration.ofSeconds(60));
    try (NbdTestClient a = NbdTestClient.open(server.port(), "vm");
        NbdTestClient b = NbdTestClient.open(server.port(), "vm")) {
      // A third connection from the same address is over the per-peer limit of 2.
      try (NbdTestClient c = NbdTestClient.greeted(server.port())) {
        throw new AssertionError("a third connection was taken");
      } catch (EOFException | SocketException expected) {
        // closed at once
      }
      a.send(0, CMD_READ, 1, 0, 4096, null);
      a.flushOut();
      assertThat(a.reply().error()).isZero();
      assertThat(server.connections()).isEqualTo(2);
    }
  }

  @Test
  void a_client_that_stops_sending_a_payload_or_reading_replies_is_dropped() throws Exception {
    restartWith(8, 8, 8, 2 << 20, Duration.ofSeconds(1));
    // Half a payload, then nothing.
    try (NbdTestClient halfway = NbdTestClient.open(server.port(), "vm")) {
      halfway.send(0, CMD_WRITE, 1, 0, 1 << 20, new byte[1000]);
      halfway.flushOut();
      halfway.socket.setSoTimeout(30_000);
      assertThat(halfway.in.read()).as("closed by the watchdog").isEqualTo(-1);
    }
    // Many large reads whose replies are never taken off the socket.
    try (NbdTestClient deaf = NbdTestClient.open(server.port(), "vm")) {
      deaf.socket.setReceiveBufferSize(4096);
      long deadline = System.nanoTime() + 30_000_000_000L;
      try {
        for (long cookie = 0; System.nanoTime() < deadline; cookie++) {
          deaf.send(0, CMD_READ, cookie, 0, 1 << 20, null);
          deaf.flushOut();
        }
      } catch (IOException e) {
        // the server closed the connection
      }
      assertThat(System.nanoTime())
          .as("dropped before the test's own deadline")
          .isLessThan(deadline);
    }
    // What they held is back: a new client reads at once.
    try (NbdTestClient fine = NbdTestClient.open(server.port(), "vm")) {
      fine.send(0, CMD_READ, 1, 0, 1 << 20, null);
      fine.flushOut();
      assertThat(fine.reply().error()).isZero();
    }
  }
}
