package dev.fvdisk.service;

import dev.fvdisk.objectstore.ObjectStore;
import java.io.IOException;
import java.io.StringReader;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.LongSupplier;
import org.jspecify.annotations.Nullable;

/**
 * The leases of images in a bucket shared by several instances: one small object per image ({@code
 * images/<id>/lease}) naming the instance that serves it, where to reach it, and until when. It is
 * created with {@code If-None-Match: *} and replaced only with {@code If-Match} on the version last
 * seen, so of instances racing for an image exactly one gets it, and an owner that slept through
 * its renewals finds out at its next attempt.
 *
 * <p>Expiry is a wall-clock time written by the owner and read by the others, so instances' clocks
 * must agree to well within a third of the lease (NTP does). A wrong clock can only send requests
 * to the wrong instance for a while: the image's log fences an instance that took it over too early
 * or lost it, whatever the clocks say.
 *
 * <p><b>Thread safety.</b> The table of held leases is concurrent; each image's lease is changed by
 * one caller at a time (the registry's lifecycle monitor or the image's own lock).
 */
final class BucketLeases implements ImageLeases {

  /** Where to find the lease object of an image by its name. */
  interface LeaseKeys {
    /**
     * @throws java.io.FileNotFoundException when no image has that name
     */
    String keyOf(String name) throws IOException;
  }

  /** This instance: its stable id and the base URL other instances send clients to. */
  record Node(String id, String url) {
    Node {
      checkUrl(url);
    }
  }

  /** A lease as the bucket holds it. */
  record Lease(
      String node, String url, long expiresAtMillis, @Nullable ImageDescriptor descriptor) {

    Lease {
      checkUrl(url);
    }

    ByteBuffer encode() {
      Properties p = new Properties();
      p.setProperty("node", node);
      p.setProperty("url", url);
      p.setProperty("expires-at-millis", Long.toString(expiresAtMillis));
      if (descriptor != null) {
        LeaseDescriptors.write(descriptor, p);
      }
      StringWriter text = new StringWriter();
      try {
        p.store(text, "fvdisk image lease");
      } catch (IOException e) {
        throw new UncheckedIOException(e); // a StringWriter does not fail
      }
      return ByteBuffer.wrap(text.toString().getBytes(StandardCharsets.ISO_8859_1));
    }

    static Lease decode(ByteBuffer bytes) throws IOException {
      Properties p = new Properties();
      p.load(new StringReader(StandardCharsets.ISO_8859_1.decode(bytes.duplicate()).toString()));
      String node = p.getProperty("node");
      String url = p.getProperty("url");
      String expires = p.getProperty("expires-at-millis");
      if (node == null || url == null || expires == null) {
        throw new IOException("a lease object lacks its node, url or expiry");
      }
      try {
        return new Lease(node, url, Long.parseLong(expires), LeaseDescriptors.read(p));
      } catch (RuntimeException e) {
        throw new IOException("a lease object cannot be read: " + e.getMessage(), e);
      }
    }
  }

  /**
   * Refuses a base URL that could not go into a {@code Location} field as it is: another instance's
   * URL comes from a lease object anyone with the bucket's keys can write, and a line break in it
   * would let that object add header fields to this instance's answers.
   *
   * @throws IllegalArgumentException unless {@code url} is empty or an {@code http} or {@code
   *     https} URL of visible ASCII characters
   */
  static void checkUrl(String url) {
    if (url.isEmpty()) {
      return;
    }
    for (int i = 0; i < url.length(); i++) {
      char c = url.charAt(i);
      if (c <= ' ' || c >= 0x7f) {
        // Not quoted back: the character may be a line break meant for a log or a header.
        throw new IllegalArgumentException(
            "an instance's URL may hold only visible ASCII characters; character "
                + i
                + " is not one");
      }
    }
    String scheme = url.substring(0, Math.max(0, url.indexOf("://"))).toLowerCase(Locale.ROOT);
    if (!scheme.equals("http") && !scheme.equals("https")) {
      throw new IllegalArgumentException(
          "an instance's URL must start with http:// or https://: " + url);
    }
  }

  /** A lease this instance holds: the object's key, the version it wrote, and until when. */
  private record Held(
      String key, String tag, long expiresAtMillis, @Nullable ImageDescriptor descriptor) {}

  private final ObjectStore store;
  private final Node self;
  private final long leaseMillis;
  private final LongSupplier clock;
  private final LeaseKeys keys;
  private final Map<String, Held> held = new ConcurrentHashMap<>();
  private final LongAdder takenOver = new LongAdder();
  private final LongAdder lost = new LongAdder();

  /**
   * @param clock wall-clock milliseconds since the epoch ({@link System#currentTimeMillis} but in
   *     tests)
   */
  BucketLeases(ObjectStore store, Node self, Duration lease, LongSupplier clock, LeaseKeys keys) {
    if (lease.toMillis() < 3) {
      throw new IllegalArgumentException("a lease must last at least a few milliseconds");
    }
    this.store = store;
    this.self = self;
    this.leaseMillis = lease.toMillis();
    this.clock = clock;
    this.keys = keys;
  }

  Node self() {
    return self;
  }

  @Override
  public @Nullable Duration renewalPeriod() {
    return Duration.ofMillis(leaseMillis / 3);
  }

  @Override
  public void take(String name) throws IOException {
    take(name, keys.keyOf(name));
  }

  /** Takes the lease under {@code key}; for an image being created, whose name is not yet known. */
  void take(String name, String key) throws IOException {
    // Two rounds: a lost race is answered by reading who won.
    for (int round = 0; ; round++) {
      ObjectStore.Tagged there = store.getTagged(key);
      long now = clock.getAsLong();
      Lease mine = new Lease(self.id(), self.url(), now + leaseMillis, null);
      String tag;
      boolean another = false;
      if (there == null) {
        tag = store.putIfTag(key, mine.encode(), null);
      } else {
        Lease current = Lease.decode(there.data());
        another = !current.node().equals(self.id());
        if (another && current.expiresAtMillis() > now) {
          throw new ImageElsewhereException(
              name, current.node(), current.url(), current.descriptor());
        }
        mine = new Lease(self.id(), self.url(), now + leaseMillis, current.descriptor());
        tag = store.putIfTag(key, mine.encode(), there.tag());
      }
      if (tag != null) {
        held.put(name, new Held(key, tag, mine.expiresAtMillis(), mine.descriptor()));
        if (another) {
          takenOver.increment();
        }
        return;
      }
      if (round == 1) {
        throw new IOException("the lease of image " + name + " keeps changing; try again");
      }
    }
  }

  @Override
  public boolean fresh(String name) {
    Held h = held.get(name);
    // Renewals come every third of the lease; one that is two thirds old means this process did
    // not run for a while, and another instance may take the image within the last third.
    return h != null && clock.getAsLong() < h.expiresAtMillis() - leaseMillis / 3;
  }

  @Override
  public boolean renew(String name, @Nullable ImageDescriptor descriptor) throws IOException {
    Held h = held.get(name);
    if (h == null) {
      return false;
    }
    ImageDescriptor published = descriptor != null ? descriptor : h.descriptor();
    long expires = clock.getAsLong() + leaseMillis;
    String tag =
        store.putIfTag(
            h.key(), new Lease(self.id(), self.url(), expires, published).encode(), h.tag());
    if (tag == null) {
      held.remove(name, h);
      return false;
    }
    held.put(name, new Held(h.key(), tag, expires, published));
    return true;
  }

  @Override
  public void release(String name) {
    Held h = held.remove(name);
    if (h == null) {
      return;
    }
    try {
      // Run out at once, but only if it is still this instance's version.
      store.putIfTag(
          h.key(), new Lease(self.id(), self.url(), 0, h.descriptor()).encode(), h.tag());
    } catch (IOException | RuntimeException e) {
      // It runs out by itself.
    }
  }

  @Override
  public void forget(String name) {
    held.remove(name);
  }

  @Override
  public void surrendered(String name) {
    held.remove(name);
    lost.increment();
  }

  /**
   * Leases this instance holds that have not run out by its clock; for monitoring. One it stopped
   * renewing (an image that failed to open, a store that does not answer) stops counting once it
   * runs out, as another instance may take it then.
   */
  int heldCount() {
    long now = clock.getAsLong();
    int count = 0;
    for (Held h : held.values()) {
      if (h.expiresAtMillis() > now) {
        count++;
      }
    }
    return count;
  }

  /**
   * Leases this instance took that another instance held last: run out (a takeover) or given up at
   * its shutdown; for monitoring.
   */
  long takenOverCount() {
    return takenOver.sum();
  }

  /** Images this instance gave up because another instance took their lease; for monitoring. */
  long lostCount() {
    return lost.sum();
  }

  /** Whether this instance holds the image's lease, fresh or not; for tests and figures. */
  boolean holds(String name) {
    return held.containsKey(name);
  }

  /** When this instance's lease on the image runs out, for figures; null when it holds none. */
  @Nullable Instant heldUntil(String name) {
    Held h = held.get(name);
    return h == null ? null : Instant.ofEpochMilli(h.expiresAtMillis());
  }
}
