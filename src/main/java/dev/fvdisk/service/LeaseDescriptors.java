package dev.fvdisk.service;

import java.time.Instant;
import java.util.Properties;
import org.jspecify.annotations.Nullable;

/**
 * An image's descriptor as its owner publishes it in the image's lease, so that other instances
 * list the image without opening it. Plain {@code descriptor.*} properties: the lease stays a text
 * an operator can read in the bucket.
 */
final class LeaseDescriptors {

  private static final String P = "descriptor.";

  private LeaseDescriptors() {}

  static void write(ImageDescriptor d, Properties p) {
    set(p, "name", d.name());
    set(p, "size-bytes", d.sizeBytes());
    set(p, "chunk-size-bytes", d.chunkSizeBytes());
    set(p, "block-size-bytes", d.blockSizeBytes());
    if (d.base() != null) {
      set(p, "base", d.base());
    }
    set(p, "read-only", d.readOnly());
    set(p, "copy-on-read", d.copyOnRead());
    ImageDescriptor.Prefetch f = d.prefetch();
    set(p, "prefetch.enabled", f.enabled());
    set(p, "prefetch.start-delay-seconds", f.startDelaySeconds());
    set(p, "prefetch.state", f.state());
    if (f.reason() != null) {
      set(p, "prefetch.reason", f.reason());
    }
    set(p, "prefetch.copied-bytes", f.copiedBytes());
    set(p, "prefetch.total-bytes", f.totalBytes());
    set(p, "used-bytes", d.usedBytes());
    set(p, "file-bytes", d.fileBytes());
    set(p, "leaked-chunks", d.leakedChunks());
    set(p, "snapshot-bytes", d.snapshotBytes());
    set(p, "snapshot-count", d.snapshotCount());
    set(p, "created-at", d.createdAt());
    set(p, "version", d.version());
  }

  /** The descriptor the properties hold; null when they hold none. */
  static @Nullable ImageDescriptor read(Properties p) {
    if (p.getProperty(P + "name") == null) {
      return null;
    }
    return new ImageDescriptor(
        get(p, "name"),
        Long.parseLong(get(p, "size-bytes")),
        Integer.parseInt(get(p, "chunk-size-bytes")),
        Integer.parseInt(get(p, "block-size-bytes")),
        p.getProperty(P + "base"),
        Boolean.parseBoolean(get(p, "read-only")),
        Boolean.parseBoolean(get(p, "copy-on-read")),
        new ImageDescriptor.Prefetch(
            Boolean.parseBoolean(get(p, "prefetch.enabled")),
            Long.parseLong(get(p, "prefetch.start-delay-seconds")),
            get(p, "prefetch.state"),
            p.getProperty(P + "prefetch.reason"),
            Long.parseLong(get(p, "prefetch.copied-bytes")),
            Long.parseLong(get(p, "prefetch.total-bytes"))),
        Long.parseLong(get(p, "used-bytes")),
        Long.parseLong(get(p, "file-bytes")),
        Long.parseLong(get(p, "leaked-chunks")),
        Long.parseLong(get(p, "snapshot-bytes")),
        Integer.parseInt(get(p, "snapshot-count")),
        Instant.parse(get(p, "created-at")),
        get(p, "version"));
  }

  private static void set(Properties p, String key, Object value) {
    p.setProperty(P + key, String.valueOf(value));
  }

  private static String get(Properties p, String key) {
    String value = p.getProperty(P + key);
    if (value == null) {
      throw new IllegalArgumentException("the lease's descriptor lacks " + key);
    }
    return value;
  }
}
