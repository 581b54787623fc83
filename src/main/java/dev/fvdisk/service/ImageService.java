package dev.fvdisk.service;

import dev.fvdisk.engine.CheckReport;
import dev.fvdisk.engine.Extent;
import dev.fvdisk.engine.Image;
import dev.fvdisk.engine.ImageClosedException;
import dev.fvdisk.engine.ImageOptions;
import dev.fvdisk.engine.ImageStats;
import dev.fvdisk.engine.Images;
import dev.fvdisk.engine.PrefetchStatus;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.locks.Lock;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The use cases of the service: the lifecycle of images, the data path, and the storage figures.
 *
 * <p>The open images live in an {@link ImageRegistry}; what writes may allocate is the {@link
 * SpacePolicy}'s business. Engine {@code IOException}s never leave the service: they become {@link
 * ServiceException}s. See the package documentation for the locks.
 */
public class ImageService implements AutoCloseable {

  private static final Logger log = LoggerFactory.getLogger(ImageService.class);

  private static final int RETAINED_IO_BUFFERS = 64;

  /** Requests streaming at once; as many as Tomcat's default pool has threads. */
  private static final int MAX_IO_BUFFERS_IN_USE = 200;

  private final ImageDirectory directory;
  private final ServiceLimits limits;
  private final ImageServiceObserver observer;
  private final EngineErrors errors;
  private final ImageRules rules;
  private final SpacePolicy space;
  private final ImageRegistry registry;
  private final IoBuffers buffers;

  public ImageService(ImageDirectory directory, ServiceLimits limits) {
    this(directory, limits, ImageServiceObserver.NONE);
  }

  public ImageService(
      ImageDirectory directory, ServiceLimits limits, ImageServiceObserver observer) {
    this.directory = directory;
    this.limits = limits;
    this.observer = observer;
    this.errors = new EngineErrors(directory);
    this.rules = new ImageRules(limits);
    this.space = new SpacePolicy(directory, limits, this::usedBytesOfAllImages, errors);
    this.registry = new ImageRegistry(directory, errors, observer, space.backgroundCopies());
    // One buffer per concurrent data request is kept; more than this many at once allocate.
    this.buffers =
        new IoBuffers(limits.ioBufferBytes(), RETAINED_IO_BUFFERS, MAX_IO_BUFFERS_IN_USE);
  }

  private long usedBytesOfAllImages() {
    return registry.usedBytes();
  }

  public ServiceLimits limits() {
    return limits;
  }

  /** Opens every image file of the data directory; failures are remembered, not thrown. */
  public void openAll() {
    registry.openAll();
  }

  /** Images that failed to open, with the reason; for monitoring. */
  public Map<String, String> failedImages() {
    return registry.failedImages();
  }

  /** The image format version the engine writes and reads, for the info endpoint. */
  public static int formatVersion() {
    return Images.FORMAT_VERSION;
  }

  /**
   * The storage figures of every open image, the free space, and the images that failed to open or
   * latched after a failed flush. Reads counters and asks the file system once; takes no image
   * lock, so a long write never holds up a health probe.
   */
  public StorageSnapshot storageSnapshot() {
    List<ImageUsage> images = registry.usages();
    images.sort(Comparator.comparing(ImageUsage::name));
    List<String> latched = new ArrayList<>();
    for (ImageUsage usage : images) {
      if (usage.failed()) {
        latched.add(usage.name());
      }
    }
    long usable;
    try {
      usable = directory.usableBytes();
    } catch (IOException e) {
      // Reported as no space at all, which takes health DOWN, rather than failing the probe.
      log.debug("Free space of {} cannot be read: {}", directory.root(), e.getMessage());
      usable = 0;
    }
    long used = images.stream().mapToLong(ImageUsage::usedBytes).sum();
    return new StorageSnapshot(
        directory.root(),
        directory.isWritable(),
        usable,
        limits.minFreeBytes(),
        space.allocatable(usable, used).bytes(),
        images,
        registry.failureReasons(),
        latched);
  }

  // ---- lifecycle ----

  public List<ImageDescriptor> list() {
    List<ImageDescriptor> descriptors = new ArrayList<>();
    for (String name : registry.names()) {
      OpenImage image = registry.lookupForListing(name);
      if (image != null) {
        try {
          descriptors.add(describe(image));
        } catch (ImageClosedException e) {
          // Deleted while we listed: it is no longer part of the list.
        }
      }
    }
    return descriptors;
  }

  /** The size and entity tag of an image, as a data request needs them. */
  public DataState dataState(String name) {
    OpenImage open = registry.lookup(name);
    Image image = open.image();
    // The tag first, as in describe(): a racing change leaves a stale tag, never a new size under
    // an old tag.
    String etag = image.changeTag();
    return new DataState(image.sizeBytes(), etag);
  }

  public ImageDescriptor describe(String name) {
    OpenImage image = registry.lookup(name);
    try {
      return describe(image);
    } catch (ImageClosedException e) {
      throw new ImageNotFoundException(name);
    }
  }

  private static ImageDescriptor describe(OpenImage open) {
    Image image = open.image();
    // The tag is taken before the values, so a change racing with this call leaves a stale tag
    // (a later If-Match fails) rather than new values under an old tag.
    String etag = image.changeTag();
    ImageStats stats = image.stats();
    PrefetchStatus prefetch = image.prefetchStatus();
    int blockSize = image.blockSizeBytes();
    return new ImageDescriptor(
        open.name(),
        stats.sizeBytes(),
        stats.chunkSizeBytes(),
        blockSize > 0
            ? blockSize
            : Math.min(ImageOptions.DEFAULT_BLOCK_SIZE_BYTES, stats.chunkSizeBytes()),
        image.baseLocator(),
        image.isReadOnly(),
        image.copyOnRead(),
        new ImageDescriptor.Prefetch(
            image.prefetchEnabled(),
            image.prefetchStartDelaySeconds(),
            prefetch.state().name().toLowerCase(Locale.ROOT),
            prefetch.reason(),
            prefetch.copiedBytes(),
            prefetch.totalBytes()),
        stats.usedBytes(),
        stats.fileBytes(),
        stats.leakedChunks(),
        Instant.ofEpochMilli(image.createdAtMillis()),
        etag);
  }

  public ImageDescriptor create(CreateImageCommand command) {
    String name = command.name();
    if (!ImageDirectory.isValidName(name)) {
      throw new InvalidRequestException(
          "name \"" + name + "\" does not match " + ImageDirectory.NAME.pattern());
    }
    ImageRules.checkPrefetchDelay(command.prefetchStartDelaySeconds());
    OpenImage base = command.base() == null ? null : baseForClone(command.base());
    if (base == null
        && (Boolean.TRUE.equals(command.copyOnRead())
            || Boolean.TRUE.equals(command.prefetchEnabled()))) {
      throw new InvalidValueException(
          "copyOnRead and prefetch copy from a base image; give \"base\" to use them");
    }
    ImageOptions options = rules.optionsFor(command, base);
    return describe(registry.create(name, options, base, space::checkImageCount));
  }

  /** The base a new clone names: it must exist, be read-only and leave room in the chain. */
  private OpenImage baseForClone(String baseName) {
    OpenImage base = registry.lookup(baseName);
    if (!base.image().isReadOnly()) {
      throw new BaseNotReadOnlyException(baseName);
    }
    int depth = registry.chainDepth(base);
    if (depth + 1 > limits.maxChainDepth()) {
      throw new InvalidValueException(
          "a clone of \""
              + baseName
              + "\" would make a chain of "
              + (depth + 1)
              + " images, more than the configured maximum of "
              + limits.maxChainDepth());
    }
    return base;
  }

  public ImageDescriptor update(String name, ImageChanges changes, @Nullable IfMatch ifMatch) {
    ImageRules.checkPrefetchDelay(changes.prefetchStartDelaySeconds());
    OpenImage open = registry.lookup(name);
    Lock lock = open.lock().writeLock();
    lock.lock();
    try {
      checkPrecondition(open, ifMatch);
      Image image = open.image();
      Long newSize = changes.sizeBytes();
      if (newSize != null) {
        rules.checkSize(newSize);
        if (newSize < image.sizeBytes()) {
          throw new InvalidValueException(
              "images cannot shrink: sizeBytes "
                  + newSize
                  + " is below the current size of "
                  + image.sizeBytes()
                  + " bytes");
        }
        if (newSize > image.maxSizeBytes()) {
          throw new InvalidValueException(
              "sizeBytes "
                  + newSize
                  + " is over the "
                  + image.maxSizeBytes()
                  + " bytes this image can grow to");
        }
      }
      boolean clearsReadOnly = image.isReadOnly() && Boolean.FALSE.equals(changes.readOnly());
      boolean staysReadOnly = image.isReadOnly() && !clearsReadOnly;
      boolean changesClone =
          changes.copyOnRead() != null
              || changes.prefetchEnabled() != null
              || changes.prefetchStartDelaySeconds() != null;
      if (staysReadOnly && newSize != null && newSize != image.sizeBytes()) {
        throw new ImageReadOnlyException(name, "clear readOnly to grow it");
      }
      if (staysReadOnly && changesClone) {
        throw new ImageReadOnlyException(name, "clear readOnly to change copyOnRead or prefetch");
      }
      if (changesClone && image.baseLocator() == null) {
        throw new InvalidValueException(
            "copyOnRead and prefetch apply only to an image that reads through a base");
      }
      if (clearsReadOnly) {
        List<String> clones = registry.clonesOf(name);
        if (!clones.isEmpty()) {
          throw new ImageInUseException(name, clones, "it must stay read-only while they exist");
        }
        registry.reopenMarked(open, false);
      }
      image = open.image();
      if (newSize != null) {
        image.grow(newSize);
      }
      if (changes.copyOnRead() != null) {
        image.setCopyOnRead(changes.copyOnRead());
      }
      if (changes.prefetchEnabled() != null || changes.prefetchStartDelaySeconds() != null) {
        boolean enabled =
            changes.prefetchEnabled() == null ? image.prefetchEnabled() : changes.prefetchEnabled();
        long delay =
            changes.prefetchStartDelaySeconds() == null
                ? image.prefetchStartDelaySeconds()
                : changes.prefetchStartDelaySeconds();
        image.setPrefetch(enabled, (int) Math.min(Integer.MAX_VALUE, delay));
      }
      if (Boolean.TRUE.equals(changes.readOnly()) && !image.isReadOnly()) {
        registry.reopenMarked(open, true);
      }
      return describe(open);
    } catch (IOException e) {
      throw errors.translate(name, e);
    } catch (ImageClosedException e) {
      throw new ImageNotFoundException(name);
    } finally {
      lock.unlock();
    }
  }

  /**
   * Deletes an image and its file; durable on return. Waits for running writes (the image's lock);
   * reads are cut off after the buffer they are in.
   *
   * @throws ImageInUseException when clones read through it
   */
  public void delete(String name, @Nullable IfMatch ifMatch) {
    if (!ImageDirectory.isValidName(name)) {
      throw new ImageNotFoundException(name);
    }
    OpenImage open = registry.find(name);
    if (open == null) {
      if (registry.deleteUnopened(name, ifMatch)) {
        return;
      }
      open = registry.find(name);
      if (open == null) {
        throw new ImageNotFoundException(name);
      }
    }
    // The image's own lock is taken before the registry's monitor and never the other way round,
    // so waiting here for running writes does not hold up other images' lifecycle changes.
    Lock lock = open.lock().writeLock();
    lock.lock();
    try {
      checkPrecondition(open, ifMatch);
      registry.delete(open);
    } finally {
      lock.unlock();
    }
  }

  public CheckResult check(String name, boolean repair) {
    OpenImage open = registry.lookup(name);
    Lock lock = open.lock().writeLock();
    lock.lock();
    try {
      CheckReport report = open.image().check(repair);
      return new CheckResult(
          report.status().name().toLowerCase(Locale.ROOT),
          report.leakedChunks(),
          report.reclaimedChunks(),
          report.problems());
    } catch (IOException e) {
      throw errors.translate(name, e);
    } catch (ImageClosedException e) {
      throw new ImageNotFoundException(name);
    } finally {
      lock.unlock();
    }
  }

  /** Work on an open image that may fail with an engine {@code IOException}. */
  @FunctionalInterface
  private interface ImageWork<T> {
    T run(Image image) throws IOException;
  }

  /**
   * Runs {@code work} and then releases {@code lock}, which the caller has taken; engine failures
   * become service exceptions, and an image closed by a concurrent delete is not found.
   */
  private <T> T underLock(OpenImage open, Lock lock, ImageWork<T> work) {
    try {
      return work.run(open.image());
    } catch (IOException e) {
      throw errors.translate(open.name(), e);
    } catch (ImageClosedException e) {
      throw new ImageNotFoundException(open.name());
    } finally {
      lock.unlock();
    }
  }

  // ---- data path ----

  /**
   * Streams {@code [offsetBytes, offsetBytes + lengthBytes)} into {@code sink} through one pooled
   * buffer. The caller has checked the range against {@link DataState#sizeBytes()}.
   *
   * @throws IOException only when writing to {@code sink} fails (the client went away)
   */
  public void read(String name, long offsetBytes, long lengthBytes, DataSink sink)
      throws IOException {
    OpenImage open = registry.lookup(name);
    checkRange(open, offsetBytes, lengthBytes);
    ByteBuffer buffer = buffers.acquire(lengthBytes);
    int bufferBytes = buffer.limit();
    long position = offsetBytes;
    long end = offsetBytes + lengthBytes;
    // Only the time spent in the engine is measured, not the time the client takes to receive.
    long engineNanos = 0;
    try {
      while (position < end) {
        int n = (int) Math.min(bufferBytes, end - position);
        buffer.clear().limit(n);
        // Locked per buffer, not across the whole response: a slow client must not hold up a
        // change that needs the image to itself, such as setting it read-only (which reopens it).
        Lock lock = open.lock().readLock();
        lock.lock();
        long started = System.nanoTime();
        try {
          open.image().read(position, buffer);
        } catch (IOException e) {
          throw errors.translate(open.name(), e);
        } catch (ImageClosedException e) {
          throw new ImageNotFoundException(name);
        } finally {
          engineNanos += System.nanoTime() - started;
          lock.unlock();
        }
        sink.write(buffer.flip());
        position += n;
      }
    } finally {
      buffers.release(buffer);
      observer.read(position - offsetBytes, engineNanos);
    }
  }

  /**
   * Writes {@code lengthBytes} read from {@code source} at {@code offsetBytes}, then flushes unless
   * told not to. Every check (read-only, precondition, range, space) runs before the first byte is
   * written. A source that ends early or holds more than {@code lengthBytes} is a write cut short:
   * what arrived is written, and the request is answered as invalid.
   *
   * @throws IOException only when reading {@code source} fails (the client went away)
   */
  public void write(
      String name,
      long offsetBytes,
      long lengthBytes,
      DataSource source,
      boolean flush,
      @Nullable IfMatch ifMatch)
      throws IOException {
    if (limits.maxWriteBytes() != null && lengthBytes > limits.maxWriteBytes()) {
      throw new PayloadTooLargeException(lengthBytes, limits.maxWriteBytes());
    }
    OpenImage open = registry.lookup(name);
    // The buffer before the lock: see IoBuffers.
    ByteBuffer buffer = buffers.acquire(lengthBytes);
    try {
      writeLocked(open, offsetBytes, lengthBytes, source, flush, ifMatch, buffer);
    } finally {
      buffers.release(buffer);
    }
  }

  private void writeLocked(
      OpenImage open,
      long offsetBytes,
      long lengthBytes,
      DataSource source,
      boolean flush,
      @Nullable IfMatch ifMatch,
      ByteBuffer buffer)
      throws IOException {
    int bufferBytes = buffer.limit();
    Lock lock = lockForChange(open, ifMatch);
    try {
      checkWritable(open, ifMatch);
      checkRange(open, offsetBytes, lengthBytes);
      space.checkSpace(open.image(), offsetBytes, lengthBytes);
      long position = offsetBytes;
      long end = offsetBytes + lengthBytes;
      // Only the time spent in the engine is measured, not the time the client takes to send.
      long engineNanos = 0;
      try {
        while (position < end) {
          buffer.clear().limit((int) Math.min(bufferBytes, end - position));
          boolean ended;
          try {
            ended = fill(source, buffer);
          } catch (IOException e) {
            throw bodyCutShort(
                open,
                lengthBytes,
                position - offsetBytes + buffer.position(),
                position - offsetBytes,
                e);
          }
          int n = buffer.flip().remaining();
          if (n > 0) {
            long started = System.nanoTime();
            try {
              writeToImage(open, position, buffer);
            } finally {
              engineNanos += System.nanoTime() - started;
            }
            position += n;
          }
          if (ended) {
            long received = position - offsetBytes;
            throw bodyCutShort(open, lengthBytes, received, received, null);
          }
        }
        buffer.clear().limit(1);
        if (source.read(buffer) > 0) {
          throw new InvalidRequestException(
              "the body is longer than the " + lengthBytes + " bytes announced");
        }
      } finally {
        observer.written(position - offsetBytes, engineNanos);
      }
      if (flush) {
        flushImage(open);
      }
    } catch (ImageClosedException e) {
      throw new ImageNotFoundException(open.name());
    } finally {
      lock.unlock();
    }
  }

  /**
   * A write whose body ended before its announced length: the client closed the connection, or the
   * body was shorter than its {@code Content-Range}. What arrived in whole buffers was written
   * (each sector holds its old or its new content).
   */
  private static InvalidRequestException bodyCutShort(
      OpenImage open, long announced, long received, long written, @Nullable IOException cause) {
    return new InvalidRequestException(
        "the body ended after "
            + received
            + " of the "
            + announced
            + " bytes announced"
            + (cause == null ? "" : " (the connection broke off)")
            + "; the first "
            + written
            + " bytes were written to image \""
            + open.name()
            + "\"");
  }

  /** Reads from {@code source} until {@code buffer} is full; true when the source ended first. */
  private static boolean fill(DataSource source, ByteBuffer buffer) throws IOException {
    while (buffer.hasRemaining()) {
      if (source.read(buffer) < 0) {
        return true;
      }
    }
    return false;
  }

  /** Engine failures become service exceptions; only the client's stream may throw IOException. */
  private void writeToImage(OpenImage open, long position, ByteBuffer data) {
    try {
      open.image().write(position, data);
    } catch (IOException e) {
      throw errors.translate(open.name(), e);
    }
  }

  private void flushImage(OpenImage open) {
    try {
      timedFlush(open.image());
    } catch (IOException e) {
      throw errors.translate(open.name(), e);
    }
  }

  private void timedFlush(Image image) throws IOException {
    long started = System.nanoTime();
    try {
      image.flush();
    } finally {
      observer.flushed(System.nanoTime() - started);
    }
  }

  /** Makes a range read as zeros without allocating, then flushes unless told not to. */
  public void zero(
      String name, long offsetBytes, long lengthBytes, boolean flush, @Nullable IfMatch ifMatch) {
    OpenImage open = registry.lookup(name);
    underLock(
        open,
        lockForChange(open, ifMatch),
        image -> {
          checkWritable(open, ifMatch);
          checkRange(open, offsetBytes, lengthBytes);
          image.zero(offsetBytes, lengthBytes);
          if (flush) {
            timedFlush(image);
          }
          return null;
        });
  }

  /** Makes every earlier write of the image durable. */
  public void flush(String name, @Nullable IfMatch ifMatch) {
    OpenImage open = registry.lookup(name);
    underLock(
        open,
        lockForChange(open, ifMatch),
        image -> {
          checkPrecondition(open, ifMatch);
          timedFlush(image);
          return null;
        });
  }

  /**
   * One page of the extent map of {@code [offsetBytes, offsetBytes + lengthBytes)}; both default to
   * the whole disk.
   */
  public ExtentPage map(String name, @Nullable Long offsetBytes, @Nullable Long lengthBytes) {
    OpenImage open = registry.lookup(name);
    long size = open.image().sizeBytes();
    long offset = offsetBytes == null ? 0 : offsetBytes;
    if (offset < 0 || offset >= size) {
      throw new RangeNotSatisfiableException(
          "offsetBytes " + offset + " is not inside the virtual disk of " + size + " bytes", size);
    }
    long length = lengthBytes == null ? size - offset : lengthBytes;
    if (length <= 0) {
      throw new InvalidValueException("lengthBytes must be positive, was " + length);
    }
    // Like a byte range, a span that ends past the disk is clipped.
    length = Math.min(length, size - offset);
    try {
      List<Extent> extents = open.image().extents(offset, length, limits.mapPageExtents());
      List<ExtentPage.MappedExtent> mapped = new ArrayList<>(extents.size());
      for (Extent e : extents) {
        mapped.add(
            new ExtentPage.MappedExtent(
                e.offsetBytes(), e.lengthBytes(), e.state().name().toLowerCase(Locale.ROOT)));
      }
      long reached = extents.get(extents.size() - 1).endBytes();
      return new ExtentPage(mapped, reached < offset + length ? reached : null);
    } catch (ImageClosedException e) {
      throw new ImageNotFoundException(name);
    }
  }

  // ---- helpers ----

  /**
   * A conditional change holds the image's lock exclusively, so no other change slips in between
   * the tag comparison and the change; unconditional writes share it.
   */
  private static Lock lockForChange(OpenImage open, @Nullable IfMatch ifMatch) {
    Lock lock = ifMatch == null ? open.lock().readLock() : open.lock().writeLock();
    lock.lock();
    return lock;
  }

  private static void checkPrecondition(OpenImage open, @Nullable IfMatch ifMatch) {
    if (ifMatch != null) {
      String current = open.image().changeTag();
      if (!ifMatch.matches(current)) {
        throw new PreconditionFailedException(open.name(), current);
      }
    }
  }

  private static void checkWritable(OpenImage open, @Nullable IfMatch ifMatch) {
    checkPrecondition(open, ifMatch);
    if (open.image().isReadOnly()) {
      throw new ImageReadOnlyException(open.name(), "data writes are refused");
    }
  }

  private static void checkRange(OpenImage open, long offsetBytes, long lengthBytes) {
    long size = open.image().sizeBytes();
    if (offsetBytes < 0 || lengthBytes < 0 || offsetBytes > size - lengthBytes) {
      throw new RangeNotSatisfiableException(offsetBytes, lengthBytes, size);
    }
  }

  /** Closes every open image, setting its clean-shutdown flag; clones before their bases. */
  @Override
  public void close() {
    registry.close();
  }
}
