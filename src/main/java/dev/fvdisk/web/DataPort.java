package dev.fvdisk.web;

import dev.fvdisk.security.TokenRegistry;
import dev.fvdisk.service.ImageService;
import io.micrometer.core.instrument.MeterRegistry;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.time.Duration;
import org.jspecify.annotations.Nullable;
import org.springframework.context.SmartLifecycle;

/**
 * Owns the {@link DataPortServer} when {@code fvdisk.http-data.enabled=true}: listening before the
 * main port answers, and stopped after it has drained, before the images close.
 */
public final class DataPort implements SmartLifecycle {

  private static final Duration STOP_TIMEOUT = Duration.ofSeconds(10);

  private final ImageService images;
  private final TokenRegistry tokens;
  private final DiskStreams streams;
  private final DataPortProperties properties;
  private final boolean allowUnauthenticated;
  private final @Nullable MeterRegistry meters;
  private volatile @Nullable DataPortServer server;

  DataPort(
      ImageService images,
      TokenRegistry tokens,
      DiskStreams streams,
      DataPortProperties properties,
      boolean allowUnauthenticated,
      @Nullable MeterRegistry meters) {
    this.images = images;
    this.tokens = tokens;
    this.streams = streams;
    this.properties = properties;
    this.allowUnauthenticated = allowUnauthenticated;
    this.meters = meters;
  }

  @Override
  public void start() {
    InetAddress address;
    try {
      address = InetAddress.getByName(properties.address());
    } catch (UnknownHostException e) {
      throw new IllegalStateException(
          "fvdisk.http-data.address " + properties.address() + " is not an address of this host",
          e);
    }
    if (tokens.isEmpty() && !address.isLoopbackAddress() && !allowUnauthenticated) {
      throw new IllegalStateException(
          "fvdisk.http-data.address "
              + properties.address()
              + " is not a loopback address, and no access tokens are configured: anyone who can"
              + " reach it could read every image. Configure fvdisk.security.tokens, listen on"
              + " loopback, or set fvdisk.security.allow-unauthenticated=true");
    }
    DataPortServer started =
        new DataPortServer(
            images,
            tokens,
            streams,
            new InetSocketAddress(address, properties.port()),
            properties,
            meters);
    try {
      started.start();
    } catch (IOException e) {
      throw new UncheckedIOException(
          "the data port cannot listen on "
              + properties.address()
              + ":"
              + properties.port()
              + " ("
              + e.getMessage()
              + "); set fvdisk.http-data.port to a free port, or fvdisk.http-data.enabled=false",
          e);
    }
    server = started;
  }

  @Override
  public void stop() {
    DataPortServer running = server;
    if (running != null) {
      running.stop(STOP_TIMEOUT);
      server = null;
    }
  }

  /** Before the web server's phases, as the NBD listener: up before HTTP, down after it. */
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
    DataPortServer running = server;
    return running == null ? -1 : running.port();
  }
}
