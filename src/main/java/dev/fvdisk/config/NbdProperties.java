package dev.fvdisk.config;

import java.time.Duration;
import org.jspecify.annotations.Nullable;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;
import org.springframework.util.unit.DataSize;

/**
 * Everything under {@code fvdisk.nbd.*}: the NBD listener (docs/nbd.md).
 *
 * @param enabled whether the service listens for NBD clients at all; default true
 * @param address the address to listen on; default loopback, and only loopback is allowed until NBD
 *     can require TLS client certificates
 * @param port the TCP port; default 10809, NBD's registered port; 0 picks a free one
 * @param maxConnections connections at once from all clients
 * @param maxConnectionsPerPeer connections at once from one address
 * @param handshakeTimeout how long a client in the handshake may take to send its first option, and
 *     each next one, until it chooses an export
 * @param maxRequestsPerConnection requests one connection may have in progress
 * @param maxInFlight the data of requests in progress over all connections
 * @param stallTimeout how long a client may take to send a write's payload or to take a reply
 *     before it is disconnected
 * @param tls TLS for the listener: required for a non-loopback address and whenever access tokens
 *     are configured
 */
@ConfigurationProperties("fvdisk.nbd")
public record NbdProperties(
    @DefaultValue("true") boolean enabled,
    @DefaultValue("127.0.0.1") String address,
    @DefaultValue("10809") int port,
    @DefaultValue("64") int maxConnections,
    @DefaultValue("16") int maxConnectionsPerPeer,
    @DefaultValue("10s") Duration handshakeTimeout,
    @DefaultValue("64") int maxRequestsPerConnection,
    @DefaultValue("256MB") DataSize maxInFlight,
    @DefaultValue("60s") Duration stallTimeout,
    @DefaultValue Tls tls) {

  /**
   * @param bundle the name of a Spring SSL bundle ({@code spring.ssl.bundle.pem.<name>.*}) whose
   *     key store holds the server's certificate and key, and whose trust store holds the
   *     authorities that client certificates must chain to; unset, the listener speaks plaintext
   */
  public record Tls(@Nullable String bundle) {}
}
