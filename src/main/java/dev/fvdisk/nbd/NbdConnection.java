package dev.fvdisk.nbd;

import dev.fvdisk.security.AccessToken;
import dev.fvdisk.service.ImageService;
import dev.fvdisk.service.ServiceException;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetAddress;
import java.net.Socket;
import java.nio.channels.Channels;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLSocket;
import javax.security.auth.x500.X500Principal;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One client connection, from accept to close: the handshake under a deadline, then the session on
 * the export it chose, then one log line saying who it was, what it used and how it ended.
 */
final class NbdConnection implements Runnable {

  private static final Logger log = LoggerFactory.getLogger(NbdConnection.class);

  private static final int BUFFER_BYTES = 64 * 1024;

  private final Socket socket;
  private final String name;
  private final Exports exports;
  private final @Nullable NbdTls tls;
  private final ImageService images;
  private final NbdLimits limits;
  private final Semaphore serverBytes;
  private final PayloadBuffers buffers;
  private final Executor workers;
  private final ScheduledExecutorService deadlines;
  private final NbdObserver observer;
  private final BooleanSupplier stopping;
  private final Consumer<NbdConnection> onClose;

  private volatile boolean pastDeadline;
  // Only the connection's thread arms it.
  private @Nullable ScheduledFuture<?> handshakeDeadline;
  private volatile boolean stalled;
  private boolean detached; // guarded by this: the session's attachment is closed
  private volatile @Nullable SSLSocket secured;
  private volatile @Nullable String clientSubject;
  private volatile @Nullable Transmission transmission;
  private volatile Handshake.@Nullable Agreed agreed;

  NbdConnection(
      Socket socket,
      String name,
      ImageService images,
      @Nullable NbdTls tls,
      NbdLimits limits,
      Semaphore serverBytes,
      PayloadBuffers buffers,
      Executor workers,
      ScheduledExecutorService deadlines,
      NbdObserver observer,
      BooleanSupplier stopping,
      Consumer<NbdConnection> onClose) {
    this.socket = socket;
    this.name = name;
    this.images = images;
    this.tls = tls;
    // Before TLS a client sees nothing: the handshake refuses every option but STARTTLS.
    this.exports = new ImageExports(images, null);
    this.limits = limits;
    this.serverBytes = serverBytes;
    this.buffers = buffers;
    this.workers = workers;
    this.deadlines = deadlines;
    this.observer = observer;
    this.stopping = stopping;
    this.onClose = onClose;
  }

  String name() {
    return name;
  }

  InetAddress peer() {
    return socket.getInetAddress();
  }

  @Override
  public void run() {
    String peer = socket.getRemoteSocketAddress().toString();
    String ended;
    try {
      ended = serve();
    } catch (NbdProtocolException e) {
      observer.connectionDropped(agreed == null ? "handshake" : "transmission");
      ended = "dropped: " + e.getMessage();
    } catch (IOException e) {
      if (stalled) {
        observer.connectionDropped("stalled");
        ended =
            "dropped: the client neither sent a payload nor read a reply for "
                + limits.stallTimeout().toSeconds()
                + " s";
      } else if (pastDeadline) {
        observer.connectionDropped("timeout");
        ended =
            "dropped: the handshake stalled, no option for "
                + limits.handshakeTimeout().toSeconds()
                + " s";
      } else if (stopping.getAsBoolean()) {
        ended = "closed at shutdown";
      } else {
        ended = "the connection failed: " + e.getMessage();
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      ended = "interrupted";
    } catch (RuntimeException e) {
      log.error("NBD connection {} from {} failed unexpectedly", name, peer, e);
      ended = "failed: " + e;
    } finally {
      SSLSocket ssl = secured;
      if (ssl != null) {
        NbdServer.closeQuietly(ssl);
      }
      NbdServer.closeQuietly(socket);
      synchronized (this) {
        // Under the lock, so a flush at shutdown never meets a closed attachment.
        detached = true;
        Handshake.Agreed session = agreed;
        if (session != null) {
          session.export().disk().close();
        }
      }
      onClose.accept(this);
    }
    logEnd(peer, ended);
  }

  private String serve() throws IOException, InterruptedException {
    socket.setTcpNoDelay(true);
    // The deadline runs until the first option and then between options, not over the whole
    // handshake: nbdinfo --list asks about every image in turn, and libnbd 1.14 holds back the end
    // of each LIST_META_CONTEXT for the kernel's 200 ms cork timeout, so a list of 50 images takes
    // 10 s. The option limit bounds how often the deadline starts again.
    armHandshakeDeadline();
    // Unbuffered while options are haggled: nothing may be read ahead of STARTTLS, as the bytes
    // after it belong to the TLS handshake. Transmission buffers its own reading.
    DataInputStream in = new DataInputStream(socket.getInputStream());
    DataOutputStream out =
        new DataOutputStream(new BufferedOutputStream(socket.getOutputStream(), BUFFER_BYTES));
    Handshake.Agreed chosen;
    try {
      chosen =
          new Handshake(in, out, exports, limits, stopping, tls == null ? null : this::upgrade)
              .onOptionAnswered(this::armHandshakeDeadline)
              .run();
    } finally {
      ScheduledFuture<?> deadline = handshakeDeadline;
      if (deadline != null) {
        deadline.cancel(false);
      }
    }
    if (chosen == null) {
      return "the client ended the handshake";
    }
    agreed = chosen;
    if (pastDeadline) {
      throw new IOException("past the handshake deadline");
    }
    // Plaintext: the socket's own channel, so data moves without copies through the heap. Over
    // TLS: the encrypting streams, unbuffered, as replies collect in their own outbox.
    SSLSocket ssl = secured;
    ReadableByteChannel input;
    WritableByteChannel output;
    if (ssl == null && socket.getChannel() != null) {
      input = socket.getChannel();
      output = socket.getChannel();
    } else {
      Socket wire = ssl != null ? ssl : socket;
      input = Channels.newChannel(wire.getInputStream());
      output = Channels.newChannel(wire.getOutputStream());
    }
    Transmission session =
        new Transmission(
            chosen,
            input,
            output,
            limits,
            serverBytes,
            buffers,
            workers,
            observer,
            stopping,
            () -> NbdServer.closeQuietly(socket));
    transmission = session;
    // The watchdog: a client stuck in the middle of a payload, or not reading its replies, is
    // dropped, which gives back what its requests hold.
    long stallNanos = limits.stallTimeout().toNanos();
    long period = Math.max(1, Math.min(stallNanos / 4, TimeUnit.SECONDS.toNanos(5)));
    ScheduledFuture<?> watchdog =
        deadlines.scheduleAtFixedRate(
            () -> {
              if (session.stalledNanos() > stallNanos) {
                stalled = true;
                NbdServer.closeQuietly(socket);
              }
            },
            period,
            period,
            TimeUnit.NANOSECONDS);
    try {
      return session.run();
    } finally {
      watchdog.cancel(false);
    }
  }

  /** Starts the handshake's deadline again: the client has that long to send its next option. */
  private void armHandshakeDeadline() {
    ScheduledFuture<?> previous = handshakeDeadline;
    if (previous != null) {
      previous.cancel(false);
    }
    handshakeDeadline =
        deadlines.schedule(
            () -> {
              pastDeadline = true;
              NbdServer.closeQuietly(socket);
            },
            limits.handshakeTimeout().toNanos(),
            TimeUnit.NANOSECONDS);
  }

  /**
   * Runs the TLS handshake over the accepted socket, requiring a client certificate, and finds the
   * token its subject acts as.
   */
  private Handshake.Upgraded upgrade() throws IOException {
    NbdTls config = tls;
    SSLSocket ssl =
        (SSLSocket)
            config
                .context()
                .getSocketFactory()
                .createSocket(
                    socket, socket.getInetAddress().getHostAddress(), socket.getPort(), true);
    secured = ssl;
    ssl.setUseClientMode(false);
    ssl.setNeedClientAuth(true);
    ssl.setEnabledProtocols(
        java.util.Arrays.stream(ssl.getSupportedProtocols())
            .filter(p -> p.equals("TLSv1.3") || p.equals("TLSv1.2"))
            .toArray(String[]::new));
    try {
      ssl.startHandshake();
    } catch (SSLException e) {
      throw new NbdProtocolException("TLS handshake failed: " + e.getMessage());
    }
    X500Principal subject = (X500Principal) ssl.getSession().getPeerPrincipal();
    clientSubject = subject.getName();
    AccessToken token = null;
    if (config.tokens() != null) {
      token =
          config
              .tokens()
              .apply(subject)
              .orElseThrow(
                  () ->
                      new NbdProtocolException(
                          "no access token has the client certificate's subject " + subject));
    }
    return new Handshake.Upgraded(
        new DataInputStream(ssl.getInputStream()),
        new DataOutputStream(new BufferedOutputStream(ssl.getOutputStream(), BUFFER_BYTES)),
        new ImageExports(images, token));
  }

  /**
   * Ends this connection at shutdown: waits up to {@code nanos} for its requests in progress,
   * flushes its image, and closes the socket, which ends the reading thread.
   */
  void finish(long nanos) {
    Transmission session = transmission;
    Handshake.Agreed chosen = agreed;
    try {
      if (session != null && chosen != null && session.awaitIdle(nanos)) {
        synchronized (this) {
          if (!detached) {
            chosen.export().disk().flush();
          }
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (ServiceException e) {
      log.warn(
          "NBD connection {}: flushing image \"{}\" at shutdown failed: {}",
          name,
          chosen.name(),
          e.getMessage());
    } finally {
      NbdServer.closeQuietly(socket);
    }
  }

  private void logEnd(String peer, String ended) {
    Handshake.Agreed chosen = agreed;
    Transmission session = transmission;
    String who = clientSubject == null ? peer : peer + " (TLS, " + clientSubject + ")";
    if (chosen == null) {
      log.info("NBD connection {} from {} without a session: {}", name, who, ended);
      return;
    }
    log.info(
        "NBD connection {} from {} to image \"{}\" ({}{}{}) ended: {}; {} requests answered, {}"
            + " with an error, {} bytes read, {} written",
        name,
        who,
        chosen.name(),
        chosen.export().readOnly() ? "read-only" : "read-write",
        chosen.structuredReplies() ? ", structured replies" : "",
        chosen.baseAllocation() ? ", base:allocation" : "",
        ended,
        session == null ? 0 : session.served(),
        session == null ? 0 : session.failed(),
        session == null ? 0 : session.bytesRead(),
        session == null ? 0 : session.bytesWritten());
  }
}
