package dev.fvdisk.security;

import java.net.InetAddress;
import java.net.UnknownHostException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.boot.web.server.ConfigurableWebServerFactory;
import org.springframework.boot.web.server.WebServerFactoryCustomizer;
import org.springframework.core.Ordered;
import org.springframework.core.env.Environment;

/**
 * The safe default: without access tokens the server listens on loopback only, and it refuses to
 * start when {@code server.address} names anything else, unless the operator opted out with {@code
 * fvdisk.security.allow-unauthenticated=true}. Runs as a customizer of the web server factory, so
 * the decision is made before any socket is opened, and last, after Boot has applied {@code
 * server.*}.
 *
 * <p>Only the main server is guarded: a separate management port ({@code management.server.port})
 * takes its address from {@code management.server.address}, which the operator sets as well.
 */
final class ListenAddressGuard
    implements WebServerFactoryCustomizer<ConfigurableWebServerFactory>, Ordered {

  private static final Logger log = LoggerFactory.getLogger(ListenAddressGuard.class);

  private final TokenRegistry tokens;
  private final boolean allowUnauthenticated;
  private final Environment environment;

  ListenAddressGuard(TokenRegistry tokens, boolean allowUnauthenticated, Environment environment) {
    this.tokens = tokens;
    this.allowUnauthenticated = allowUnauthenticated;
    this.environment = environment;
  }

  @Override
  public void customize(ConfigurableWebServerFactory factory) {
    String configured = environment.getProperty("server.address");
    if (!tokens.isEmpty()) {
      log.info(
          "Access tokens required: {} configured ({})",
          tokens.size(),
          tokens.tokens().stream().map(t -> t.name() + ":" + t.role()).toList());
      return;
    }
    if (configured == null || configured.isBlank()) {
      InetAddress loopback = InetAddress.getLoopbackAddress();
      factory.setAddress(loopback);
      log.warn(
          "No access tokens configured (fvdisk.security.tokens): listening on loopback {} only, and"
              + " every local client has full access",
          loopback.getHostAddress());
      return;
    }
    if (isLoopback(configured)) {
      log.warn(
          "No access tokens configured (fvdisk.security.tokens): listening on loopback {} only, and"
              + " every local client has full access",
          configured);
      return;
    }
    if (!allowUnauthenticated) {
      throw new UnprotectedListenAddressException(configured);
    }
    log.warn(
        "*** fvdisk.security.allow-unauthenticated=true: listening on {} WITHOUT ANY"
            + " AUTHENTICATION. Anyone who can reach this address can read, overwrite and delete"
            + " every image. ***",
        configured);
  }

  private static boolean isLoopback(String address) {
    try {
      return InetAddress.getByName(address).isLoopbackAddress();
    } catch (UnknownHostException e) {
      // The server could not listen there either; refusing is the safe answer.
      return false;
    }
  }

  @Override
  public int getOrder() {
    return Ordered.LOWEST_PRECEDENCE;
  }
}
