package dev.fvdisk.nbd;

import dev.fvdisk.net.ConnectionLimits;
import dev.fvdisk.service.ImageService;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.channels.ServerSocketChannel;
import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The NBD listener: accepts connections, holds them to the {@linkplain NbdLimits limits}, runs each
 * on a thread of its own, and stops in order (new requests refused, requests in progress answered,
 * every attached image flushed, then the sockets closed).
 *
 * <p>Threads: one accepting; per connection one reading requests and one writing replies (blocking
 * sockets; hypervisors open few connections); and a shared pool of workers that call the disks, so
 * that one connection's requests run side by side and its durable writes share a group commit.
 * Workers never write to a socket, so a slow client cannot hold them.
 */
public final class NbdServer implements AutoCloseable {

  private static final Logger log = LoggerFactory.getLogger(NbdServer.class);

  /** Workers over all connections: enough for 16 durable writes in flight from a few clients. */
  private static final int WORKERS = 64;

  /** Payload buffers kept for reuse over all connections; more in use at once are dropped. */
  private static final long RETAINED_BUFFER_BYTES = 64L << 20;

  private final ImageService images;
  private final InetSocketAddress address;
  private final NbdLimits limits;
  private final NbdObserver observer;
  private final @Nullable NbdTls tls;
  private final Semaphore serverBytes;
  private final PayloadBuffers buffers;
  private final ThreadPoolExecutor workers;
  private final ScheduledExecutorService deadlines;

  private final ConnectionLimits<NbdConnection> connections;
  private final AtomicInteger connectionNumbers = new AtomicInteger();

  private volatile boolean stopping;
  private @Nullable ServerSocket listener;
  private @Nullable Thread acceptor;

  /**
   * @param tls when given, every client must upgrade to TLS and present a trusted certificate
   */
  public NbdServer(
      ImageService images,
      InetSocketAddress address,
      NbdLimits limits,
      NbdObserver observer,
      @Nullable NbdTls tls) {
    this.images = images;
    this.tls = tls;
    this.address = address;
    this.limits = limits;
    this.observer = observer;
    this.connections =
        new ConnectionLimits<>(limits.maxConnections(), limits.maxConnectionsPerPeer());
    this.serverBytes = new Semaphore((int) limits.maxInFlightBytes(), true);
    this.buffers =
        new PayloadBuffers(
            limits.maxPayloadBytes(), Math.min(limits.maxInFlightBytes(), RETAINED_BUFFER_BYTES));
    this.workers =
        new ThreadPoolExecutor(
            WORKERS,
            WORKERS,
            30,
            TimeUnit.SECONDS,
            new LinkedBlockingQueue<>(),
            daemonThreads("nbd-worker-"));
    this.workers.allowCoreThreadTimeOut(true);
    this.deadlines = Executors.newSingleThreadScheduledExecutor(daemonThreads("nbd-deadline-"));
  }

  /** Binds the listening socket and starts accepting; the port is known on return. */
  public synchronized void start() throws IOException {
    // Opened through a channel, so accepted sockets have channels (see NbdConnection).
    ServerSocket socket = ServerSocketChannel.open().socket();
    try {
      socket.setReuseAddress(true);
      socket.bind(address, 64);
    } catch (IOException e) {
      socket.close();
      throw e;
    }
    listener = socket;
    Thread thread = new Thread(() -> acceptLoop(socket), "nbd-accept");
    thread.setDaemon(true);
    acceptor = thread;
    thread.start();
    log.info(
        "NBD listening on {}:{} ({}; export names are image names)",
        socket.getInetAddress().getHostAddress(),
        socket.getLocalPort(),
        tls == null
            ? "plaintext"
            : tls.tokens() == null
                ? "TLS with client certificates required"
                : "TLS with client certificates required, each acting as an access token");
  }

  /** The port listened on; useful when it was configured as 0. */
  public int port() {
    ServerSocket socket = listener;
    if (socket == null) {
      throw new IllegalStateException("the NBD server is not started");
    }
    return socket.getLocalPort();
  }

  /** Connections open now, in the handshake or in a session. */
  public int connections() {
    return connections.size();
  }

  /** Requests read and not yet answered, over all connections. */
  public int requestsInProgress() {
    return workers.getActiveCount() + workers.getQueue().size();
  }

  private void acceptLoop(ServerSocket socket) {
    while (!stopping) {
      Socket client;
      try {
        client = socket.accept();
      } catch (IOException e) {
        if (!stopping) {
          log.warn("NBD listener failed; no further connections are taken: {}", e.toString());
        }
        return;
      }
      admit(client);
    }
  }

  private void admit(Socket client) {
    NbdConnection connection =
        new NbdConnection(
            client,
            "nbd-" + connectionNumbers.incrementAndGet(),
            images,
            tls,
            limits,
            serverBytes,
            buffers,
            workers,
            deadlines,
            observer,
            () -> stopping,
            this::forget);
    String refusal = connections.admit(connection, client.getInetAddress());
    if (refusal != null) {
      log.warn("NBD connection from {} refused: {}", client.getRemoteSocketAddress(), refusal);
      observer.connectionDropped("limit");
      closeQuietly(client);
      return;
    }
    Thread thread = new Thread(connection, connection.name());
    thread.setDaemon(true);
    thread.start();
  }

  private void forget(NbdConnection connection) {
    connections.forget(connection, connection.peer());
  }

  /**
   * Stops: refuses new connections and requests ({@code ESHUTDOWN}), waits up to {@code timeout}
   * for the requests in progress, flushes every attached image so that every write answered so far
   * is durable, and closes the connections.
   */
  public void stop(Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    stopping = true;
    synchronized (this) {
      if (listener != null) {
        closeQuietly(listener);
      }
    }
    for (NbdConnection connection : connections.close()) {
      connection.finish(Math.max(0, deadline - System.nanoTime()));
    }
    workers.shutdown();
    deadlines.shutdownNow();
    try {
      if (!workers.awaitTermination(
          Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS)) {
        log.warn("NBD requests still running after {} at shutdown", timeout);
      }
      Thread thread = acceptor;
      if (thread != null) {
        thread.join(1000);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  @Override
  public void close() {
    stop(Duration.ofSeconds(10));
  }

  static void closeQuietly(AutoCloseable closeable) {
    try {
      closeable.close();
    } catch (Exception e) {
      // closing is all that is left to do
    }
  }

  private static ThreadFactory daemonThreads(String prefix) {
    AtomicInteger n = new AtomicInteger();
    return r -> {
      Thread t = new Thread(r, prefix + n.incrementAndGet());
      t.setDaemon(true);
      return t;
    };
  }
}
