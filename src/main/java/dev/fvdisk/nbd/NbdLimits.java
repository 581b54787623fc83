package dev.fvdisk.nbd;

import java.time.Duration;

/**
 * What one client, and all of them together, may make the NBD server spend.
 *
 * @param maxConnections connections at once, all clients together; more are closed at once
 * @param maxConnectionsPerPeer connections at once from one address
 * @param handshakeTimeout how long a client in the handshake may take to send its first option, and
 *     each next one
 * @param maxOptions options one handshake may send; {@code nbdinfo --list} sends about two per
 *     image, so this bounds how many images it can list. The handshake's deadline bounds its time.
 * @param maxOptionBytes the data one option may carry
 * @param maxPayloadBytes the largest read or write one request may ask for; also advertised as the
 *     maximum block size
 * @param maxInFlightRequests requests one connection may have in progress; its next request is read
 *     once one of them is answered
 * @param maxInFlightBytes the bytes of requests in progress over all connections (write payloads
 *     held and reads being answered); a request that would pass it waits
 * @param stallTimeout how long a client may take to send a write's payload, or to take a reply off
 *     the socket, before it is disconnected; what it holds is given back then
 */
public record NbdLimits(
    int maxConnections,
    int maxConnectionsPerPeer,
    Duration handshakeTimeout,
    int maxOptions,
    int maxOptionBytes,
    int maxPayloadBytes,
    int maxInFlightRequests,
    long maxInFlightBytes,
    Duration stallTimeout) {

  /** The limits without configuration. */
  public static final NbdLimits DEFAULTS =
      new NbdLimits(
          64,
          16,
          Duration.ofSeconds(10),
          1024,
          64 * 1024,
          32 << 20,
          64,
          256L << 20,
          Duration.ofSeconds(60));

  public NbdLimits {
    if (maxPayloadBytes < 1 << 20 || Integer.bitCount(maxPayloadBytes) != 1) {
      throw new IllegalArgumentException(
          "the largest payload must be a power of two of 1 MiB or more");
    }
    if (maxInFlightBytes < maxPayloadBytes || maxInFlightBytes > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(
          "the in-flight bytes must hold one largest payload and be under 2 GiB");
    }
  }
}
