package dev.fvdisk.config;

import dev.fvdisk.monitoring.NbdMeters;
import dev.fvdisk.nbd.NbdLimits;
import dev.fvdisk.nbd.NbdObserver;
import dev.fvdisk.nbd.NbdServer;
import dev.fvdisk.nbd.NbdTls;
import dev.fvdisk.security.TokenRegistry;
import dev.fvdisk.service.ImageService;
import io.micrometer.core.instrument.MeterRegistry;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.time.Duration;
import javax.net.ssl.SSLContext;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.boot.ssl.SslBundles;
import org.springframework.context.SmartLifecycle;

/** Owns the {@link NbdServer}: started after the service is up, stopped before it closes. */
public final class NbdListener implements SmartLifecycle {

  private static final Logger log = LoggerFactory.getLogger(NbdListener.class);

  private static final Duration STOP_TIMEOUT = Duration.ofSeconds(10);

  private final ImageService images;
  private final NbdProperties properties;
  private final TokenRegistry tokens;
  private final SslBundles sslBundles;
  private final @Nullable MeterRegistry meters;
  private volatile @Nullable NbdServer server;

  NbdListener(
      ImageService images,
      NbdProperties properties,
      TokenRegistry tokens,
      SslBundles sslBundles,
      @Nullable MeterRegistry meters) {
    this.images = images;
    this.properties = properties;
    this.tokens = tokens;
    this.sslBundles = sslBundles;
    this.meters = meters;
  }

  @Override
  public void start() {
    String bundle = properties.tls().bundle();
    boolean useTls = bundle != null && !bundle.isBlank();
    if (!tokens.isEmpty() && !useTls) {
      // NBD clients cannot present tokens; their identity is a TLS client certificate. Without
      // TLS, any local process could bypass the tokens.
      log.warn(
          "NBD is not started: access tokens are configured, so NBD needs TLS with client"
              + " certificates (fvdisk.nbd.tls.bundle); set fvdisk.nbd.enabled=false to say that"
              + " NBD is not wanted");
      return;
    }
    InetAddress address;
    try {
      address = InetAddress.getByName(properties.address());
    } catch (UnknownHostException e) {
      throw new IllegalStateException(
          "fvdisk.nbd.address " + properties.address() + " is not an address of this host", e);
    }
    if (!address.isLoopbackAddress() && !useTls) {
      throw new IllegalStateException(
          "fvdisk.nbd.address "
              + properties.address()
              + " is not a loopback address; NBD has no authentication of its own, so it listens"
              + " beyond loopback only with TLS and client certificates (fvdisk.nbd.tls.bundle),"
              + " or set fvdisk.nbd.enabled=false");
    }
    NbdTls tls = null;
    if (useTls) {
      SSLContext context = sslBundles.getBundle(bundle).createSslContext();
      tls = new NbdTls(context, tokens.isEmpty() ? null : tokens::forCertificateSubject);
    }
    NbdLimits limits =
        new NbdLimits(
            properties.maxConnections(),
            properties.maxConnectionsPerPeer(),
            properties.handshakeTimeout(),
            NbdLimits.DEFAULTS.maxOptions(),
            NbdLimits.DEFAULTS.maxOptionBytes(),
            NbdLimits.DEFAULTS.maxPayloadBytes(),
            properties.maxRequestsPerConnection(),
            properties.maxInFlight().toBytes(),
            properties.stallTimeout());
    NbdMeters nbdMeters = meters == null ? null : new NbdMeters(meters);
    NbdObserver observer = nbdMeters == null ? NbdObserver.NONE : nbdMeters;
    NbdServer started =
        new NbdServer(
            images, new InetSocketAddress(address, properties.port()), limits, observer, tls);
    try {
      started.start();
    } catch (IOException e) {
      throw new UncheckedIOException(
          "NBD cannot listen on "
              + properties.address()
              + ":"
              + properties.port()
              + " ("
              + e.getMessage()
              + "); set fvdisk.nbd.port to a free port, or fvdisk.nbd.enabled=false",
          e);
    }
    if (nbdMeters != null) {
      nbdMeters.watch(started);
    }
    server = started;
  }

  @Override
  public void stop() {
    NbdServer running = server;
    if (running != null) {
      running.stop(STOP_TIMEOUT);
      server = null;
    }
  }

  /**
   * Before the web server's phases: NBD listens before HTTP answers (so a ready health check means
   * NBD is ready too), and stops after HTTP has drained, just before the images close.
   */
  @Override
  public int getPhase() {
    return SmartLifecycle.DEFAULT_PHASE - 4096;
  }

  @Override
  public boolean isRunning() {
    return server != null;
  }

  /** The port listened on, or -1 when not listening. */
  public int port() {
    NbdServer running = server;
    return running == null ? -1 : running.port();
  }
}
