package dev.fvdisk.monitoring;

import dev.fvdisk.nbd.NbdObserver;
import dev.fvdisk.nbd.NbdServer;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * The NBD server's meters: connections and requests in progress (gauges), requests by command and
 * outcome (timers), bytes moved, and connections the server dropped.
 */
public class NbdMeters implements NbdObserver {

  private final MeterRegistry registry;
  // One timer per command and outcome, found without the registry's look-up on every request.
  private final Map<String, Timer> timers = new ConcurrentHashMap<>();
  private final Counter bytesRead;
  private final Counter bytesWritten;

  public NbdMeters(MeterRegistry registry) {
    this.registry = registry;
    this.bytesRead =
        Counter.builder("fvdisk.nbd.bytes")
            .description("Data bytes NBD clients read and wrote")
            .baseUnit("bytes")
            .tag("direction", "read")
            .register(registry);
    this.bytesWritten =
        Counter.builder("fvdisk.nbd.bytes")
            .description("Data bytes NBD clients read and wrote")
            .baseUnit("bytes")
            .tag("direction", "write")
            .register(registry);
  }

  /** Registers the gauges that read the server's state at scrape time. */
  public void watch(NbdServer server) {
    Gauge.builder("fvdisk.nbd.connections", server, NbdServer::connections)
        .description("NBD connections open, in the handshake or in a session")
        .register(registry);
    Gauge.builder("fvdisk.nbd.requests.in.progress", server, NbdServer::requestsInProgress)
        .description("NBD requests read and not yet answered")
        .register(registry);
  }

  @Override
  public void request(String command, long nanos, long bytes, int errno) {
    String outcome = errno == 0 ? "ok" : "errno-" + errno;
    timers
        .computeIfAbsent(
            command + '/' + outcome,
            key ->
                Timer.builder("fvdisk.nbd.requests")
                    .description(
                        "NBD requests answered, by command and outcome (ok, or the error's number)")
                    .tag("command", command)
                    .tag("outcome", outcome)
                    .register(registry))
        .record(nanos, TimeUnit.NANOSECONDS);
    if (bytes > 0) {
      (command.equals("read") ? bytesRead : bytesWritten).increment(bytes);
    }
  }

  @Override
  public void connectionDropped(String reason) {
    Counter.builder("fvdisk.nbd.connections.dropped")
        .description("NBD connections the server dropped or refused, by reason")
        .tag("reason", reason)
        .register(registry)
        .increment();
  }
}
