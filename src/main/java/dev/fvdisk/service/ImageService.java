package dev.fvdisk.service;

import dev.fvdisk.engine.CheckReport;
import dev.fvdisk.engine.CorruptImageException;
import dev.fvdisk.engine.Extent;
import dev.fvdisk.engine.Image;
import dev.fvdisk.engine.ImageClosedException;
import dev.fvdisk.engine.ImageFailedException;
import dev.fvdisk.engine.ImageOptions;
import dev.fvdisk.engine.ImageStats;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.file.FileAlreadyExistsException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.Lock;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The use cases of the service, and the registry of open images.
 *
 * <p>Every image file in the data directory is opened for writing at start-up ({@link #openAll()})
 * or, when it appears later, on first use; {@link #close()} closes them all, which makes pending
 * writes durable and sets each image's clean-shutdown flag. An image that fails to open is
 * remembered with its reason and answered with an {@link ImageCorruptException} until the next
 * restart.
 *
 * <p>Engine {@code IOException}s never leave this class: they become {@link ServiceException}s.
 * Lifecycle changes (create, delete, first open) are serialised on one monitor; see the package
 * documentation for the per-image locks.
 */
public class ImageService implements AutoCloseable {

  /** The copy-on-read block size every image reports until base images exist (issue 3). */
  public static final int DEFAULT_BLOCK_SIZE_BYTES = 65536;

  private static final Logger log = LoggerFactory.getLogger(ImageService.class);
  private static final long SECTOR_BYTES = ImageOptions.SECTOR_BYTES;

  private final ImageDirectory directory;
  private final ServiceLimits limits;
  private final Map<String, OpenImage> openImages = new ConcurrentHashMap<>();
  private final Map<String, IOException> failedImages = new ConcurrentHashMap<>();
  private final Object lifecycleMonitor = new Object();

  /** An open image with the lock the service takes around it. */
  private record OpenImage(String name, Image image, ReentrantReadWriteLock lock) {}

  public ImageService(ImageDirectory directory, ServiceLimits limits) {
    this.directory = directory;
    this.limits = limits;
  }

  public ServiceLimits limits() {
    return limits;
  }

  /** Opens every image file of the data directory; failures are remembered, not thrown. */
  public void openAll() {
    synchronized (lifecycleMonitor) {
      List<String> names;
      try {
        names = directory.names();
      } catch (IOException e) {
        throw new StorageIoException("(data directory)", "the data directory cannot be listed", e);
      }
      for (String name : names) {
        if (!openImages.containsKey(name)) {
          tryOpen(name);
        }
      }
      log.info("Opened {} image(s) in {}", openImages.size(), directory.root());
    }
  }

  private @Nullable OpenImage tryOpen(String name) {
    try {
      OpenImage opened = new OpenImage(name, directory.open(name), new ReentrantReadWriteLock());
      openImages.put(name, opened);
      failedImages.remove(name);
      return opened;
    } catch (IOException e) {
      log.warn("Image {} cannot be opened: {}", name, e.getMessage());
      failedImages.put(name, e);
      return null;
    }
  }

  /** Images that failed to open, with the reason; for monitoring. */
  public Map<String, String> failedImages() {
    Map<String, String> reasons = new java.util.TreeMap<>();
    failedImages.forEach((name, e) -> reasons.put(name, String.valueOf(e.getMessage())));
    return reasons;
  }

  // ---- lifecycle ----

  public List<ImageDescriptor> list() {
    List<String> names;
    try {
      names = directory.names();
    } catch (IOException e) {
      throw new StorageIoException("(data directory)", "the data directory cannot be listed", e);
    }
    List<ImageDescriptor> descriptors = new ArrayList<>();
    for (String name : names) {
      OpenImage image = openImages.get(name);
      if (image == null && !failedImages.containsKey(name)) {
        synchronized (lifecycleMonitor) {
          image = openImages.containsKey(name) ? openImages.get(name) : tryOpen(name);
        }
      }
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

  public ImageDescriptor describe(String name) {
    OpenImage image = lookup(name);
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
    return new ImageDescriptor(
        open.name(),
        stats.sizeBytes(),
        stats.chunkSizeBytes(),
        blockSizeBytes(stats.chunkSizeBytes()),
        image.isReadOnly(),
        stats.usedBytes(),
        stats.fileBytes(),
        stats.leakedChunks(),
        Instant.ofEpochMilli(image.createdAtMillis()),
        etag);
  }

  private static int blockSizeBytes(int chunkSizeBytes) {
    return Math.min(DEFAULT_BLOCK_SIZE_BYTES, chunkSizeBytes);
  }

  public ImageDescriptor create(CreateImageCommand command) {
    String name = command.name();
    if (!ImageDirectory.isValidName(name)) {
      throw new InvalidRequestException(
          "name \"" + name + "\" does not match " + ImageDirectory.NAME.pattern());
    }
    if (command.prefetchStartDelaySeconds() != null && command.prefetchStartDelaySeconds() < 0) {
      throw new InvalidValueException(
          "prefetch.startDelaySeconds must be 0 or more, was "
              + command.prefetchStartDelaySeconds());
    }
    if (command.base() != null) {
      throw new NotImplementedException(
          "base images are not implemented yet; create the image without \"base\"");
    }
    rejectCopyOnReadAndPrefetch(
        command.copyOnRead(), command.prefetchEnabled(), command.prefetchStartDelaySeconds());
    if (command.sizeBytes() == null) {
      throw new InvalidRequestException("sizeBytes is required when no base is given");
    }
    long sizeBytes = command.sizeBytes();
    checkSize("sizeBytes", sizeBytes);
    long chunkSizeBytes =
        command.chunkSizeBytes() == null
            ? ImageOptions.DEFAULT_CHUNK_SIZE_BYTES
            : command.chunkSizeBytes();
    if (Long.bitCount(chunkSizeBytes) != 1
        || chunkSizeBytes < ImageOptions.MIN_CHUNK_SIZE_BYTES
        || chunkSizeBytes > ImageOptions.MAX_CHUNK_SIZE_BYTES) {
      throw new InvalidValueException(
          "chunkSizeBytes must be a power of two from "
              + ImageOptions.MIN_CHUNK_SIZE_BYTES
              + " to "
              + ImageOptions.MAX_CHUNK_SIZE_BYTES
              + ", was "
              + chunkSizeBytes);
    }
    if (command.blockSizeBytes() != null) {
      long block = command.blockSizeBytes();
      if (Long.bitCount(block) != 1 || block < SECTOR_BYTES || block > chunkSizeBytes) {
        throw new InvalidValueException(
            "blockSizeBytes must be a power of two from 512 to chunkSizeBytes ("
                + chunkSizeBytes
                + "), was "
                + block);
      }
      if (block != blockSizeBytes((int) chunkSizeBytes)) {
        throw new NotImplementedException(
            "blockSizeBytes can only be "
                + blockSizeBytes((int) chunkSizeBytes)
                + " until base images (and their copy-on-read bitmap) are implemented");
      }
    }
    // Table space is reserved (as a hole) for growing up to the configured maximum, within what
    // the format allows for this chunk size.
    long reserveBytes = Math.min(limits.maxImageSizeBytes(), chunkSizeBytes << 24);
    reserveBytes = Math.max(sizeBytes, reserveBytes / SECTOR_BYTES * SECTOR_BYTES);
    ImageOptions options;
    try {
      options =
          ImageOptions.builder(sizeBytes)
              .chunkSizeBytes((int) chunkSizeBytes)
              .maxSizeBytes(reserveBytes)
              .build();
    } catch (IllegalArgumentException e) {
      throw new InvalidValueException(e.getMessage());
    }
    synchronized (lifecycleMonitor) {
      if (openImages.containsKey(name) || directory.exists(name)) {
        throw new ImageExistsException(name);
      }
      Image image;
      try {
        image = directory.create(name, options);
      } catch (FileAlreadyExistsException e) {
        throw new ImageExistsException(name);
      } catch (IOException e) {
        throw new StorageIoException(name, withoutDirectory(e), e);
      }
      OpenImage opened = new OpenImage(name, image, new ReentrantReadWriteLock());
      openImages.put(name, opened);
      failedImages.remove(name);
      return describe(opened);
    }
  }

  private static void rejectCopyOnReadAndPrefetch(
      @Nullable Boolean copyOnRead,
      @Nullable Boolean prefetchEnabled,
      @Nullable Long prefetchStartDelaySeconds) {
    if (Boolean.TRUE.equals(copyOnRead)
        || Boolean.TRUE.equals(prefetchEnabled)
        || (prefetchStartDelaySeconds != null && prefetchStartDelaySeconds != 0)) {
      throw new NotImplementedException(
          "copy-on-read and prefetch need base images, which are not implemented yet");
    }
  }

  private void checkSize(String field, long sizeBytes) {
    if (sizeBytes <= 0 || sizeBytes % SECTOR_BYTES != 0) {
      throw new InvalidValueException(
          field + " must be a positive multiple of 512, was " + sizeBytes);
    }
    if (sizeBytes > limits.maxImageSizeBytes()) {
      throw new InvalidValueException(
          field
              + " "
              + sizeBytes
              + " is over the configured maximum image size of "
              + limits.maxImageSizeBytes()
              + " bytes");
    }
  }

  public ImageDescriptor update(String name, ImageChanges changes, @Nullable IfMatch ifMatch) {
    if (changes.prefetchStartDelaySeconds() != null && changes.prefetchStartDelaySeconds() < 0) {
      throw new InvalidValueException(
          "prefetch.startDelaySeconds must be 0 or more, was "
              + changes.prefetchStartDelaySeconds());
    }
    rejectCopyOnReadAndPrefetch(
        changes.copyOnRead(), changes.prefetchEnabled(), changes.prefetchStartDelaySeconds());
    OpenImage open = lookup(name);
    Image image = open.image();
    Lock lock = open.lock().writeLock();
    lock.lock();
    try {
      checkPrecondition(open, ifMatch);
      Long newSize = changes.sizeBytes();
      if (newSize != null) {
        checkSize("sizeBytes", newSize);
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
      boolean wantsReadOnly = Boolean.TRUE.equals(changes.readOnly());
      boolean staysReadOnly = image.isReadOnly() && !Boolean.FALSE.equals(changes.readOnly());
      if (newSize != null && newSize != image.sizeBytes() && staysReadOnly) {
        throw new ImageReadOnlyException(name, "clear readOnly to grow it");
      }
      if (Boolean.FALSE.equals(changes.readOnly())) {
        image.setReadOnly(false);
      }
      if (newSize != null) {
        image.grow(newSize);
      }
      if (wantsReadOnly) {
        // Earlier writes must be durable before the image is promised never to change again.
        image.flush();
        image.setReadOnly(true);
      }
      return describe(open);
    } catch (IOException e) {
      throw translate(open, e);
    } catch (ImageClosedException e) {
      throw new ImageNotFoundException(name);
    } finally {
      lock.unlock();
    }
  }

  public void delete(String name, @Nullable IfMatch ifMatch) {
    if (!ImageDirectory.isValidName(name)) {
      throw new ImageNotFoundException(name);
    }
    OpenImage open = openImages.get(name);
    if (open == null) {
      if (deleteUnopened(name, ifMatch)) {
        return;
      }
      open = openImages.get(name);
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
      synchronized (lifecycleMonitor) {
        if (!openImages.remove(name, open)) {
          throw new ImageNotFoundException(name);
        }
      }
      try {
        open.image().close();
      } catch (IOException e) {
        log.warn("Closing image {} before deleting it failed: {}", name, e.getMessage());
      }
      deleteFile(name);
    } finally {
      lock.unlock();
    }
  }

  /**
   * Deletes an image file that is not open, such as one that failed to open, so a damaged file can
   * be removed. Returns false when the image was opened meanwhile.
   */
  private boolean deleteUnopened(String name, @Nullable IfMatch ifMatch) {
    synchronized (lifecycleMonitor) {
      if (openImages.containsKey(name)) {
        return false;
      }
      if (!directory.exists(name)) {
        throw new ImageNotFoundException(name);
      }
      if (ifMatch != null && !ifMatch.any()) {
        throw new PreconditionFailedException(name, "");
      }
      deleteFile(name);
      return true;
    }
  }

  private void deleteFile(String name) {
    try {
      directory.delete(name);
      failedImages.remove(name);
    } catch (IOException e) {
      throw new StorageIoException(name, withoutDirectory(e), e);
    }
  }

  public CheckResult check(String name, boolean repair) {
    OpenImage open = lookup(name);
    Lock lock = open.lock().writeLock();
    lock.lock();
    try {
      CheckReport report = open.image().check(repair);
      return new CheckResult(
          report.status().name().toLowerCase(java.util.Locale.ROOT),
          report.leakedChunks(),
          report.reclaimedChunks(),
          report.problems());
    } catch (IOException e) {
      throw translate(open, e);
    } catch (ImageClosedException e) {
      throw new ImageNotFoundException(name);
    } finally {
      lock.unlock();
    }
  }

  // ---- data path ----

  /**
   * Streams {@code [offsetBytes, offsetBytes + lengthBytes)} into {@code sink} through one buffer.
   * The caller has checked the range against {@link ImageDescriptor#sizeBytes()}.
   *
   * @throws IOException only when writing to {@code sink} fails (the client went away)
   */
  public void read(String name, long offsetBytes, long lengthBytes, OutputStream sink)
      throws IOException {
    OpenImage open = lookup(name);
    checkRange(open, offsetBytes, lengthBytes);
    byte[] buffer = new byte[(int) Math.min(limits.ioBufferBytes(), Math.max(1, lengthBytes))];
    long position = offsetBytes;
    long end = offsetBytes + lengthBytes;
    while (position < end) {
      int n = (int) Math.min(buffer.length, end - position);
      try {
        open.image().read(position, ByteBuffer.wrap(buffer, 0, n));
      } catch (IOException e) {
        throw translate(open, e);
      } catch (ImageClosedException e) {
        throw new ImageNotFoundException(name);
      }
      sink.write(buffer, 0, n);
      position += n;
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
      InputStream source,
      boolean flush,
      @Nullable IfMatch ifMatch)
      throws IOException {
    if (limits.maxWriteBytes() != null && lengthBytes > limits.maxWriteBytes()) {
      throw new PayloadTooLargeException(lengthBytes, limits.maxWriteBytes());
    }
    OpenImage open = lookup(name);
    Lock lock = lockForChange(open, ifMatch);
    try {
      checkWritable(open, ifMatch);
      checkRange(open, offsetBytes, lengthBytes);
      checkSpace(open, offsetBytes, lengthBytes);
      byte[] buffer = new byte[(int) Math.min(limits.ioBufferBytes(), Math.max(1, lengthBytes))];
      long position = offsetBytes;
      long end = offsetBytes + lengthBytes;
      while (position < end) {
        int wanted = (int) Math.min(buffer.length, end - position);
        int n = source.readNBytes(buffer, 0, wanted);
        if (n > 0) {
          writeToImage(open, position, buffer, n);
          position += n;
        }
        if (n < wanted) {
          throw new InvalidRequestException(
              "the body ended after "
                  + (position - offsetBytes)
                  + " of the "
                  + lengthBytes
                  + " bytes announced; the bytes received were written");
        }
      }
      if (source.read() >= 0) {
        throw new InvalidRequestException(
            "the body is longer than the " + lengthBytes + " bytes announced");
      }
      if (flush) {
        flushImage(open);
      }
    } catch (ImageClosedException e) {
      throw new ImageNotFoundException(name);
    } finally {
      lock.unlock();
    }
  }

  /** Engine failures become service exceptions; only the client's stream may throw IOException. */
  private void writeToImage(OpenImage open, long position, byte[] buffer, int length) {
    try {
      open.image().write(position, ByteBuffer.wrap(buffer, 0, length));
    } catch (IOException e) {
      throw translate(open, e);
    }
  }

  private void flushImage(OpenImage open) {
    try {
      open.image().flush();
    } catch (IOException e) {
      throw translate(open, e);
    }
  }

  /** Makes a range read as zeros without allocating, then flushes unless told not to. */
  public void zero(
      String name, long offsetBytes, long lengthBytes, boolean flush, @Nullable IfMatch ifMatch) {
    OpenImage open = lookup(name);
    Lock lock = lockForChange(open, ifMatch);
    try {
      checkWritable(open, ifMatch);
      checkRange(open, offsetBytes, lengthBytes);
      open.image().zero(offsetBytes, lengthBytes);
      if (flush) {
        open.image().flush();
      }
    } catch (IOException e) {
      throw translate(open, e);
    } catch (ImageClosedException e) {
      throw new ImageNotFoundException(name);
    } finally {
      lock.unlock();
    }
  }

  /** Makes every earlier write of the image durable. */
  public void flush(String name, @Nullable IfMatch ifMatch) {
    OpenImage open = lookup(name);
    Lock lock = lockForChange(open, ifMatch);
    try {
      checkPrecondition(open, ifMatch);
      open.image().flush();
    } catch (IOException e) {
      throw translate(open, e);
    } catch (ImageClosedException e) {
      throw new ImageNotFoundException(name);
    } finally {
      lock.unlock();
    }
  }

  /**
   * One page of the extent map of {@code [offsetBytes, offsetBytes + lengthBytes)}; both default to
   * the whole disk.
   */
  public ExtentPage map(String name, @Nullable Long offsetBytes, @Nullable Long lengthBytes) {
    OpenImage open = lookup(name);
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
                e.offsetBytes(), e.lengthBytes(), e.allocated() ? "data" : "zero"));
      }
      long reached = extents.get(extents.size() - 1).endBytes();
      return new ExtentPage(mapped, reached < offset + length ? reached : null);
    } catch (ImageClosedException e) {
      throw new ImageNotFoundException(name);
    }
  }

  // ---- helpers ----

  private OpenImage lookup(String name) {
    if (!ImageDirectory.isValidName(name)) {
      throw new ImageNotFoundException(name);
    }
    OpenImage open = openImages.get(name);
    if (open != null) {
      return open;
    }
    synchronized (lifecycleMonitor) {
      open = openImages.get(name);
      if (open != null) {
        return open;
      }
      IOException failure = failedImages.get(name);
      if (failure == null && directory.exists(name)) {
        open = tryOpen(name);
        if (open != null) {
          return open;
        }
        failure = failedImages.get(name);
      }
      if (failure != null && directory.exists(name)) {
        throw new ImageCorruptException(name, withoutDirectory(failure), failure);
      }
      throw new ImageNotFoundException(name);
    }
  }

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

  private void checkSpace(OpenImage open, long offsetBytes, long lengthBytes) {
    long needed = open.image().bytesToAllocate(offsetBytes, lengthBytes);
    if (needed == 0) {
      return;
    }
    long available;
    try {
      available = Math.max(0, directory.usableBytes() - limits.minFreeBytes());
    } catch (IOException e) {
      throw new StorageIoException(open.name(), withoutDirectory(e), e);
    }
    if (needed > available) {
      throw new InsufficientStorageException(needed, available);
    }
  }

  private ServiceException translate(OpenImage open, IOException e) {
    if (e instanceof ImageFailedException) {
      return new ImageUnavailableException(open.name(), e);
    }
    if (e instanceof CorruptImageException) {
      return new ImageCorruptException(open.name(), withoutDirectory(e), e);
    }
    return new StorageIoException(open.name(), withoutDirectory(e), e);
  }

  /** The engine's message names files by path; clients see only the file name. */
  private String withoutDirectory(Throwable e) {
    String message = String.valueOf(e.getMessage());
    return message.replace(directory.root() + java.io.File.separator, "");
  }

  /** Closes every open image, setting its clean-shutdown flag. */
  @Override
  public void close() {
    for (OpenImage open : List.copyOf(openImages.values())) {
      Lock lock = open.lock().writeLock();
      lock.lock();
      try {
        if (openImages.remove(open.name(), open)) {
          open.image().close();
        }
      } catch (IOException | RuntimeException e) {
        log.error("Closing image {} failed; it will be recovered at next open", open.name(), e);
      } finally {
        lock.unlock();
      }
    }
  }
}
