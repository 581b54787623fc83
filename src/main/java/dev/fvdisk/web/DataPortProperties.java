package dev.fvdisk.web;

import java.time.Duration;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;

/**
 * Everything under {@code fvdisk.http-data.*}: the data port ({@link DataPortServer}), a lean
 * listener for image data's reads and writes beside the main port.
 *
 * @param enabled whether the data port listens at all; default false
 * @param address the address to listen on; default loopback. Without access tokens only a loopback
 *     address is taken, unless {@code fvdisk.security.allow-unauthenticated=true}, as on the main
 *     port. The data port speaks plaintext only: beyond loopback, tokens cross the network in the
 *     clear, so put it on a trusted network or behind a TLS proxy.
 * @param port the TCP port; default 8089; 0 picks a free one
 * @param maxConnections connections at once from all clients (each holds a thread)
 * @param maxConnectionsPerPeer connections at once from one address
 * @param idleTimeout how long a connection may wait between requests, and how long a request head
 *     may take to arrive whole, before the connection is closed
 * @param stallTimeout how long a client may take no bytes of an answer, or send no bytes of a body,
 *     before it is cut off
 */
@ConfigurationProperties("fvdisk.http-data")
public record DataPortProperties(
    @DefaultValue("false") boolean enabled,
    @DefaultValue("127.0.0.1") String address,
    @DefaultValue("8089") int port,
    @DefaultValue("256") int maxConnections,
    @DefaultValue("128") int maxConnectionsPerPeer,
    @DefaultValue("30s") Duration idleTimeout,
    @DefaultValue("60s") Duration stallTimeout) {}
