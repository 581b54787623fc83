package dev.fvdisk.web;

import dev.fvdisk.net.ConnectionLimits;
import dev.fvdisk.security.TokenRegistry;
import dev.fvdisk.service.ImageService;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.channels.ServerSocketChannel;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import tools.jackson.databind.json.JsonMapper;

/**
 * The data port: a second, lean HTTP/1.1 listener that answers only {@code GET}, {@code HEAD} and
 * {@code PUT} of {@code /api/v1/images/{name}/data}, the requests QEMU's curl driver, image
 * importers and disk uploads send by the thousand, without the servlet container, Spring MVC or the
 * security filter chain.
 *
 * <p>Why: on the main port a 4 KiB ranged read costs 80–100 µs of CPU, most of it in Tomcat and the
 * filter chains; nginx answers the same read for about 25 µs (docs/performance.md). A 1 MiB write's
 * body is copied four times there on its way to the file. Here a request is parsed from one buffer,
 * authenticated and authorized by the same {@link TokenRegistry} and {@link
 * dev.fvdisk.security.AccessPolicy} as the main port, and answered from the same {@link
 * DiskStreams}: a read with one gathering write of head and data, a write with its body read from
 * the socket straight into the request's direct buffer.
 *
 * <p>What it answers: 200 (whole disk, or {@code HEAD}), 206 (one range), 204 (a write), and the
 * main port's problems for the same faults (400, 401, 403, 404, 411, 412, 413, 415, 416, 5xx, and
 * 307 to the instance that holds the image). Any other method on the data path is 405, any other
 * path 404, a read with a body or a query 400; everything else goes to the main port. Requests on
 * one connection are answered in order (pipelining is allowed); a malformed head is answered 400
 * and the connection closed, as is any request refused before its body was read.
 *
 * <p>Limits: connections at once, over all and per client address; an idle connection, or one whose
 * head has not arrived whole, is closed after the idle timeout; a client that takes no bytes of an
 * answer, or sends none of a body, for the stall timeout is cut off by a watchdog. Threads: one
 * accepting, one per connection (platform threads, blocking sockets), one watchdog.
 */
final class DataPortServer {

  private static final Logger log = LoggerFactory.getLogger(DataPortServer.class);

  /** How long {@link #stop} waits, past its deadline, for threads finishing a disk read. */
  private static final Duration LAST_WAIT = Duration.ofSeconds(2);

  static final JsonMapper JSON = JsonMapper.builder().build();

  /** RFC 9110's IMF-fixdate: a two-digit day, unlike {@code RFC_1123_DATE_TIME}. */
  private static final DateTimeFormatter HTTP_DATE =
      DateTimeFormatter.ofPattern("EEE, dd MMM yyyy HH:mm:ss 'GMT'", java.util.Locale.US);

  private final ImageService images;
  private final TokenRegistry tokens;
  private final DiskStreams streams;
  private final InetSocketAddress address;
  private final DataPortProperties limits;
  private final @Nullable MeterRegistry meters;
  private final Map<String, Timer> timers = new ConcurrentHashMap<>();
  private final ScheduledExecutorService watchdog;
  private final List<Meter.Id> meterIds = new java.util.ArrayList<>();
  // Registered by start, before the threads that count in them begin.
  private @Nullable Counter refusedAtLimit;
  private @Nullable Counter cutStalled;

  private final ConnectionLimits<DataPortConnection> connections;
  private final AtomicInteger connectionNumbers = new AtomicInteger();

  private volatile boolean stopping;
  private volatile @Nullable ServerSocket listener;
  private volatile long dateSecond = -1;
  private volatile byte[] date = new byte[0];

  DataPortServer(
      ImageService images,
      TokenRegistry tokens,
      DiskStreams streams,
      InetSocketAddress address,
      DataPortProperties limits,
      @Nullable MeterRegistry meters) {
    this.images = images;
    this.tokens = tokens;
    this.streams = streams;
    this.address = address;
    this.limits = limits;
    this.meters = meters;
    this.connections =
        new ConnectionLimits<>(limits.maxConnections(), limits.maxConnectionsPerPeer());
    this.watchdog =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "data-port-watchdog");
              t.setDaemon(true);
              return t;
            });
  }

  private Counter dropped(MeterRegistry registry, String reason) {
    Counter counter =
        Counter.builder("fvdisk.data.port.connections.dropped")
            .description("Data port connections refused or cut off by a limit")
            .tag("reason", reason)
            .register(registry);
    meterIds.add(counter.getId());
    return counter;
  }

  /** Binds the port and starts accepting; the port is known on return. */
  synchronized void start() throws IOException {
    // Opened through a channel, so accepted sockets have channels for gathering writes.
    ServerSocket socket = ServerSocketChannel.open().socket();
    try {
      socket.setReuseAddress(true);
      socket.bind(address, 128);
    } catch (IOException e) {
      socket.close();
      throw e;
    }
    listener = socket;
    if (meters != null) {
      refusedAtLimit = dropped(meters, "limit");
      cutStalled = dropped(meters, "stalled");
      meterIds.add(
          Gauge.builder("fvdisk.data.port.connections", connections, ConnectionLimits::size)
              .description("Data port connections open")
              .register(meters)
              .getId());
    }
    Thread acceptor = new Thread(() -> acceptLoop(socket), "data-port-accept");
    acceptor.setDaemon(true);
    acceptor.start();
    watchdog.scheduleWithFixedDelay(this::cutStalled, 1, 1, TimeUnit.SECONDS);
    log.info(
        "Data port listening on {}:{} (GET, HEAD and PUT of /api/v1/images/{name}/data)",
        socket.getInetAddress().getHostAddress(),
        socket.getLocalPort());
  }

  /** The port listened on. */
  int port() {
    ServerSocket socket = listener;
    if (socket == null) {
      throw new IllegalStateException("the data port is not started");
    }
    return socket.getLocalPort();
  }

  /** Connections open now. */
  int connections() {
    return connections.size();
  }

  ImageService images() {
    return images;
  }

  TokenRegistry tokens() {
    return tokens;
  }

  DiskStreams streams() {
    return streams;
  }

  /** The port's limits: connections, idle and stall timeouts. */
  DataPortProperties limits() {
    return limits;
  }

  boolean stopping() {
    return stopping;
  }

  /** The {@code Date} field's value, formatted once a second. */
  byte[] date() {
    long now = System.currentTimeMillis() / 1000;
    if (now != dateSecond) {
      date =
          HTTP_DATE
              .format(ZonedDateTime.ofInstant(java.time.Instant.ofEpochSecond(now), ZoneOffset.UTC))
              .getBytes(StandardCharsets.US_ASCII);
      dateSecond = now;
    }
    return date;
  }

  /**
   * Records an answer in {@code http.server.requests} with the tags Spring's observation gives the
   * main port's, so one dashboard shows both ports.
   */
  void record(String method, int status, String uri, String exception, long nanos) {
    MeterRegistry registry = meters;
    if (registry == null) {
      return;
    }
    String key = method + ' ' + status + ' ' + uri + ' ' + exception;
    Timer timer = timers.get(key);
    if (timer == null) {
      if (timers.size() > 1000) {
        // Methods are the client's words: past a thousand series, only known ones are kept apart.
        method =
            "GET".equals(method) || "HEAD".equals(method) || "PUT".equals(method)
                ? method
                : "UNKNOWN";
        key = method + ' ' + status + ' ' + uri + ' ' + exception;
      }
      String tagMethod = method;
      timer =
          timers.computeIfAbsent(
              key,
              k ->
                  Timer.builder("http.server.requests")
                      .tags(
                          Tags.of(
                              "error", exception,
                              "exception", exception,
                              "method", tagMethod,
                              "outcome", outcome(status),
                              "status", Integer.toString(status),
                              "uri", uri))
                      .register(registry));
    }
    timer.record(nanos, TimeUnit.NANOSECONDS);
  }

  private static String outcome(int status) {
    return switch (status / 100) {
      case 1 -> "INFORMATIONAL";
      case 2 -> "SUCCESS";
      case 3 -> "REDIRECTION";
      case 4 -> "CLIENT_ERROR";
      case 5 -> "SERVER_ERROR";
      default -> "UNKNOWN";
    };
  }

  private void acceptLoop(ServerSocket socket) {
    while (!stopping) {
      Socket client;
      try {
        client = socket.accept();
      } catch (IOException e) {
        if (stopping || socket.isClosed()) {
          return;
        }
        // Out of file descriptors, say: the port must come back when they are freed.
        log.warn("Data port could not accept a connection; trying again shortly: {}", e.toString());
        try {
          Thread.sleep(100);
        } catch (InterruptedException interrupted) {
          return;
        }
        continue;
      }
      admit(client);
    }
  }

  private void admit(Socket client) {
    DataPortConnection connection =
        new DataPortConnection(client, "data-port-" + connectionNumbers.incrementAndGet(), this);
    String refusal = connections.admit(connection, client.getInetAddress());
    if (refusal != null) {
      // One line per refusal would let a client flood the log.
      log.debug(
          "Data port connection from {} refused: {}", client.getRemoteSocketAddress(), refusal);
      if (refusedAtLimit != null && !stopping) {
        refusedAtLimit.increment();
      }
      connection.close();
      return;
    }
    Thread thread = new Thread(connection, connection.name());
    thread.setDaemon(true);
    thread.start();
  }

  void forget(DataPortConnection connection) {
    connections.forget(connection, connection.peer());
  }

  private void cutStalled() {
    long now = System.nanoTime();
    long limit = limits.stallTimeout().toNanos();
    for (DataPortConnection connection : connections.open()) {
      if (connection.stalled(now, limit)) {
        log.info(
            "Data port connection {} from {} moved no bytes for {}; it is closed",
            connection.name(),
            connection.peer().getHostAddress(),
            limits.stallTimeout());
        if (cutStalled != null) {
          cutStalled.increment();
        }
        connection.close();
      }
    }
  }

  /**
   * Stops: no new connections, idle ones closed at once, answers in progress given until {@code
   * timeout} to finish (each closes its connection after), then every connection closed.
   */
  void stop(Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    stopping = true;
    ServerSocket socket = listener;
    if (socket != null) {
      try {
        socket.close();
      } catch (IOException e) {
        // closing is all that is left to do
      }
    }
    watchdog.shutdownNow();
    List<DataPortConnection> left = connections.close();
    while (!left.isEmpty() && System.nanoTime() < deadline) {
      for (DataPortConnection connection : left) {
        if (!connection.answering()) {
          connection.close();
        }
      }
      try {
        Thread.sleep(10);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
      left = connections.open();
    }
    for (DataPortConnection connection : connections.open()) {
      connection.close();
    }
    // A thread still inside a disk read when its socket closed finishes that read before it sees
    // the close; it is waited for, a little past the deadline, so that no read runs on after the
    // port stopped and while the images are being closed.
    long lastWait = Math.max(deadline, System.nanoTime()) + LAST_WAIT.toNanos();
    while (!connections.open().isEmpty() && System.nanoTime() < lastWait) {
      try {
        Thread.sleep(10);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
    }
    if (!connections.open().isEmpty()) {
      log.warn(
          "Data port stopped with {} connection threads still running", connections.open().size());
    }
    if (meters != null) {
      meterIds.forEach(meters::remove);
    }
  }
}
