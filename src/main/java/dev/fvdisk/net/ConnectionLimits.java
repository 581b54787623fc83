package dev.fvdisk.net;

import java.net.InetAddress;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.jspecify.annotations.Nullable;

/**
 * The connections a listener holds open, counted over all clients and per client address, so that
 * no client can take every thread or socket a listener has. Shared by the NBD server and the data
 * port. Closing it refuses every later connection and hands back the open ones, in one step, so
 * none admitted at the same moment is missed. Thread-safe.
 *
 * @param <C> what the listener keeps for a connection
 */
public final class ConnectionLimits<C> {

  private final int maxConnections;
  private final int maxPerPeer;
  private final Set<C> open = new LinkedHashSet<>();
  private final Map<InetAddress, Integer> perPeer = new HashMap<>();
  private boolean closed;

  /**
   * @param maxConnections connections at once over all clients
   * @param maxPerPeer connections at once from one address
   */
  public ConnectionLimits(int maxConnections, int maxPerPeer) {
    this.maxConnections = maxConnections;
    this.maxPerPeer = maxPerPeer;
  }

  /**
   * Counts {@code connection} from {@code peer} as open, or says why it may not be.
   *
   * @return null when admitted, else the reason, for the log
   */
  public synchronized @Nullable String admit(C connection, InetAddress peer) {
    int fromPeer = perPeer.getOrDefault(peer, 0);
    if (closed) {
      return "the server is shutting down";
    }
    if (open.size() >= maxConnections) {
      return "already " + open.size() + " connections, the limit";
    }
    if (fromPeer >= maxPerPeer) {
      return "already " + fromPeer + " connections from this address, the limit";
    }
    open.add(connection);
    perPeer.merge(peer, 1, Integer::sum);
    return null;
  }

  /** Stops counting a connection admitted from {@code peer}; once only, however often called. */
  public synchronized void forget(C connection, InetAddress peer) {
    if (open.remove(connection)) {
      perPeer.computeIfPresent(peer, (address, n) -> n > 1 ? n - 1 : null);
    }
  }

  /** The connections open now. */
  public synchronized List<C> open() {
    return List.copyOf(open);
  }

  /** How many connections are open now. */
  public synchronized int size() {
    return open.size();
  }

  /** Refuses every later connection, and returns the ones open now. */
  public synchronized List<C> close() {
    closed = true;
    return List.copyOf(open);
  }
}
