package dev.fvdisk.service;

import dev.fvdisk.engine.BaseImageException;
import dev.fvdisk.engine.BaseResolver;
import dev.fvdisk.engine.CheckReport;
import dev.fvdisk.engine.CorruptImageException;
import dev.fvdisk.engine.Extent;
import dev.fvdisk.engine.Image;
import dev.fvdisk.engine.ImageClosedException;
import dev.fvdisk.engine.ImageFailedException;
import dev.fvdisk.engine.ImageOptions;
import dev.fvdisk.engine.ImageStats;
import dev.fvdisk.engine.Images;
import dev.fvdisk.engine.PrefetchStatus;
import dev.fvdisk.engine.SpaceBudget;
import dev.fvdisk.engine.StorageFull;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.FileAlreadyExistsException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.Lock;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The use cases of the service, and the registry of open images.
 *
 * <p>Every image file in the data directory is opened at start-up ({@link #openAll()}) or, when it
 * appears later, on first use: for writing, or for reading only when it is marked read-only. A
 * clone's base is opened first, through the same registry, so every image in a chain is open once
 * and shared by all its clones. {@link #close()} closes clones before their bases, which makes
 * pending writes durable and sets each image's clean-shutdown flag. An image that fails to open is
 * remembered with its reason and answered with an {@link ImageCorruptException} until the next
 * restart.
 *
 * <p>Engine {@code IOException}s never leave this class: they become {@link ServiceException}s.
 * Lifecycle changes (create, delete, first open) are serialised on one monitor; see the package
 * documentation for the per-image locks.
 */
public class ImageService implements AutoCloseable {

  private static final Logger log = LoggerFactory.getLogger(ImageService.class);
  private static final long SECTOR_BYTES = ImageOptions.SECTOR_BYTES;
  private static final int RETAINED_IO_BUFFERS = 64;

  /** Requests streaming at once; as many as Tomcat's default pool has threads. */
  private static final int MAX_IO_BUFFERS_IN_USE = 200;

  private final ImageDirectory directory;
  private final ServiceLimits limits;
  private final ImageServiceObserver observer;
  private final Map<String, OpenImage> openImages = new ConcurrentHashMap<>();
  private final Map<String, IOException> failedImages = new ConcurrentHashMap<>();
  private final Object lifecycleMonitor = new Object();
  private final Set<String> opening = new HashSet<>();
  private final IoBuffers buffers;

  /** The engine asks for a clone's base by name; it comes from (and stays in) the registry. */
  private final BaseResolver bases =
      name -> {
        OpenImage base = openImages.get(name);
        if (base == null && ImageDirectory.isValidName(name)) {
          synchronized (lifecycleMonitor) {
            base = openImages.containsKey(name) ? openImages.get(name) : tryOpen(name);
          }
        }
        return base == null ? null : base.image();
      };

  /**
   * What copies from a base (prefetching, copy-on-read) may take: the same space client writes may
   * allocate, so background work never takes a clone past the storage quota or the free space the
   * file system must keep.
   */
  private final SpaceBudget backgroundCopies =
      bytes -> {
        Allocatable allocatable = allocatable();
        return bytes <= allocatable.bytes()
            ? null
            : allocatable.limit() + ", and a copy needs " + bytes;
      };

  /**
   * An open image with the lock the service takes around it. The image is replaced, under the write
   * lock, when its read-only mark changes, because a marked image is opened read-only.
   */
  private static final class OpenImage {
    private final String name;
    private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    private volatile Image image;

    OpenImage(String name, Image image) {
      this.name = name;
      this.image = image;
    }

    String name() {
      return name;
    }

    Image image() {
      return image;
    }

    ReentrantReadWriteLock lock() {
      return lock;
    }
  }

  public ImageService(ImageDirectory directory, ServiceLimits limits) {
    this(directory, limits, ImageServiceObserver.NONE);
  }

  public ImageService(
      ImageDirectory directory, ServiceLimits limits, ImageServiceObserver observer) {
    this.directory = directory;
    this.limits = limits;
    this.observer = observer;
    // One buffer per concurrent data request is kept; more than this many at once allocate.
    this.buffers =
        new IoBuffers(limits.ioBufferBytes(), RETAINED_IO_BUFFERS, MAX_IO_BUFFERS_IN_USE);
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

  /** Opens an image (and, through the resolver, its bases); the caller holds the monitor. */
  private @Nullable OpenImage tryOpen(String name) {
    if (!directory.exists(name)) {
      // Listed a moment ago and deleted since: not a failure to remember.
      return null;
    }
    if (!opening.add(name)) {
      // Only a damaged or hand-made file can name itself in its own chain of bases.
      failedImages.put(name, new BaseImageException(name + ": its chain of bases is a cycle"));
      return null;
    }
    try {
      OpenImage opened = new OpenImage(name, directory.open(name, bases, backgroundCopies));
      openImages.put(name, opened);
      failedImages.remove(name);
      announce(opened);
      return opened;
    } catch (IOException | RuntimeException e) {
      log.warn("Image {} cannot be opened: {}", name, e.getMessage());
      failedImages.put(name, e instanceof IOException io ? io : new IOException(e.getMessage(), e));
      return null;
    } finally {
      opening.remove(name);
    }
  }

  /** Images that failed to open, with the reason; for monitoring. */
  public Map<String, String> failedImages() {
    Map<String, String> reasons = new java.util.TreeMap<>();
    failedImages.forEach((name, e) -> reasons.put(name, String.valueOf(e.getMessage())));
    return reasons;
  }

  // ---- monitoring (read-only) ----

  /**
   * The storage figures of every open image, the free space, and the images that failed to open or
   * latched after a failed flush. Reads counters and asks the file system once; takes no image
   * lock, so a long write never holds up a health probe.
   */
  public StorageSnapshot storageSnapshot() {
    List<ImageUsage> images = new ArrayList<>();
    List<String> latched = new ArrayList<>();
    for (OpenImage open : openImages.values()) {
      ImageUsage usage = usage(open);
      images.add(usage);
      if (usage.failed()) {
        latched.add(usage.name());
      }
    }
    images.sort(java.util.Comparator.comparing(ImageUsage::name));
    latched.sort(null);
    Map<String, String> failed = new java.util.TreeMap<>();
    failedImages.forEach((name, e) -> failed.put(name, withoutDirectory(e)));
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
        allocatable(usable, used).bytes(),
        images,
        failed,
        latched);
  }

  /** The image format version the engine writes and reads, for the info endpoint. */
  public static int formatVersion() {
    return Images.FORMAT_VERSION;
  }

  /**
   * What writes may still allocate, and the figures behind it.
   *
   * @param bytes the smaller of the free space above the threshold that writes never use and what
   *     remains of the storage quota
   * @param quotaBytes the quota when it is the smaller, else null
   * @param usableBytes the file system's free space that this process may use
   * @param minFreeBytes the free space writes leave alone
   */
  private record Allocatable(
      long bytes, @Nullable Long quotaBytes, long usableBytes, long minFreeBytes) {

    /** Which limit {@link #bytes} comes from, in words for an operator; only built when asked. */
    String limit() {
      return quotaBytes != null
          ? "the storage quota of " + quotaBytes + " bytes has " + bytes + " bytes left"
          : "the data directory's file system has "
              + usableBytes
              + " bytes free and keeps "
              + minFreeBytes
              + " of them free";
    }
  }

  /** What writes may allocate now; asks the file system once. */
  private Allocatable allocatable() {
    long usable;
    try {
      usable = directory.usableBytes();
    } catch (IOException e) {
      throw new StorageIoException("(data directory)", withoutDirectory(e), e);
    }
    return allocatable(usable, usedBytesOfAllImages());
  }

  /**
   * The one place that turns free space and the quota into what writes may still allocate, so the
   * write path, background copies and monitoring agree.
   */
  private Allocatable allocatable(long usableBytes, long usedBytes) {
    long aboveThreshold = Math.max(0, usableBytes - limits.minFreeBytes());
    Long quota = limits.storageQuotaBytes();
    if (quota != null && quota - usedBytes < aboveThreshold) {
      return new Allocatable(
          Math.max(0, quota - usedBytes), quota, usableBytes, limits.minFreeBytes());
    }
    return new Allocatable(aboveThreshold, null, usableBytes, limits.minFreeBytes());
  }

  private static ImageUsage usage(OpenImage open) {
    Image image = open.image();
    ImageStats stats = image.stats();
    PrefetchStatus prefetch = image.prefetchStatus();
    return new ImageUsage(
        open.name(),
        stats.sizeBytes(),
        stats.usedBytes(),
        stats.fileBytes(),
        stats.leakedChunks(),
        stats.journalUsedRatio(),
        stats.copyOnReadBytesInFlight(),
        image.baseLocator() != null,
        prefetch.copiedBytes(),
        prefetch.totalBytes(),
        prefetch.waitingForSpace(),
        image.isFailed());
  }

  /** Tells the observer about a new registry entry; its figures are read only while it stays. */
  private void announce(OpenImage opened) {
    observer.imageOpened(
        opened.name(), () -> openImages.get(opened.name()) == opened ? usage(opened) : null);
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

  /** The size and entity tag of an image, as a data request needs them. */
  public DataState dataState(String name) {
    OpenImage open = lookup(name);
    Image image = open.image();
    // The tag first, as in describe(): a racing change leaves a stale tag, never a new size under
    // an old tag.
    String etag = image.changeTag();
    return new DataState(image.sizeBytes(), etag);
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
    if (command.prefetchStartDelaySeconds() != null && command.prefetchStartDelaySeconds() < 0) {
      throw new InvalidValueException(
          "prefetch.startDelaySeconds must be 0 or more, was "
              + command.prefetchStartDelaySeconds());
    }
    OpenImage base = command.base() == null ? null : baseForClone(command.base());
    if (base == null
        && (Boolean.TRUE.equals(command.copyOnRead())
            || Boolean.TRUE.equals(command.prefetchEnabled()))) {
      throw new InvalidValueException(
          "copyOnRead and prefetch copy from a base image; give \"base\" to use them");
    }
    Long requestedSize = command.sizeBytes();
    if (requestedSize == null && base == null) {
      throw new InvalidRequestException("sizeBytes is required when no base is given");
    }
    long sizeBytes = requestedSize == null ? base.image().sizeBytes() : requestedSize;
    checkSize("sizeBytes", sizeBytes);
    if (base != null && sizeBytes < base.image().sizeBytes()) {
      throw new InvalidValueException(
          "sizeBytes "
              + sizeBytes
              + " is smaller than the base image \""
              + base.name()
              + "\" ("
              + base.image().sizeBytes()
              + " bytes); a clone may only be as large or larger");
    }
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
    long blockSizeBytes =
        command.blockSizeBytes() == null
            ? Math.min(ImageOptions.DEFAULT_BLOCK_SIZE_BYTES, chunkSizeBytes)
            : command.blockSizeBytes();
    if (Long.bitCount(blockSizeBytes) != 1
        || blockSizeBytes < SECTOR_BYTES
        || blockSizeBytes > chunkSizeBytes) {
      throw new InvalidValueException(
          "blockSizeBytes must be a power of two from 512 to chunkSizeBytes ("
              + chunkSizeBytes
              + "), was "
              + blockSizeBytes);
    }
    // Table space is reserved (as a hole) for growing up to the configured maximum, within what
    // the format allows for this chunk size.
    long reserveBytes = Math.min(limits.maxImageSizeBytes(), chunkSizeBytes << 24);
    reserveBytes = Math.max(sizeBytes, reserveBytes / SECTOR_BYTES * SECTOR_BYTES);
    long delaySeconds =
        command.prefetchStartDelaySeconds() == null ? 0 : command.prefetchStartDelaySeconds();
    ImageOptions options;
    try {
      options =
          ImageOptions.builder(sizeBytes)
              .chunkSizeBytes((int) chunkSizeBytes)
              .maxSizeBytes(reserveBytes)
              .blockSizeBytes((int) blockSizeBytes)
              .copyOnRead(Boolean.TRUE.equals(command.copyOnRead()))
              .prefetch(
                  Boolean.TRUE.equals(command.prefetchEnabled()),
                  (int) Math.min(Integer.MAX_VALUE, delaySeconds))
              .build();
    } catch (IllegalArgumentException e) {
      throw new InvalidValueException(e.getMessage());
    }
    synchronized (lifecycleMonitor) {
      if (openImages.containsKey(name) || directory.exists(name)) {
        throw new ImageExistsException(name);
      }
      if (base != null && openImages.get(base.name()) != base) {
        throw new ImageNotFoundException(base.name());
      }
      checkImageCount();
      Image image;
      try {
        image =
            directory.create(
                name,
                options,
                base == null ? null : base.image(),
                base == null ? "" : base.name(),
                backgroundCopies);
      } catch (FileAlreadyExistsException e) {
        throw new ImageExistsException(name);
      } catch (IOException e) {
        String diskFull = StorageFull.reasonOf(e);
        if (diskFull != null) {
          throw InsufficientStorageException.diskFull(name, diskFull);
        }
        throw new StorageIoException(name, withoutDirectory(e), e);
      }
      OpenImage opened = new OpenImage(name, image);
      openImages.put(name, opened);
      failedImages.remove(name);
      announce(opened);
      return describe(opened);
    }
  }

  /** The base a new clone names: it must exist, be read-only and leave room in the chain. */
  private OpenImage baseForClone(String baseName) {
    OpenImage base = lookup(baseName);
    if (!base.image().isReadOnly()) {
      throw new BaseNotReadOnlyException(baseName);
    }
    int depth = 1;
    for (Image below = base.image(); below.baseLocator() != null; depth++) {
      OpenImage next = openImages.get(below.baseLocator());
      if (next == null) {
        break;
      }
      below = next.image();
    }
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

  /** Open images that read through {@code name} as their base. */
  private List<String> clonesOf(String name) {
    List<String> clones = new ArrayList<>();
    for (OpenImage open : openImages.values()) {
      if (name.equals(open.image().baseLocator())) {
        clones.add(open.name());
      }
    }
    clones.sort(null);
    return clones;
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
    OpenImage open = lookup(name);
    Lock lock = open.lock().writeLock();
    lock.lock();
    try {
      checkPrecondition(open, ifMatch);
      Image image = open.image();
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
        List<String> clones = clonesOf(name);
        if (!clones.isEmpty()) {
          throw new ImageInUseException(name, clones, "it must stay read-only while they exist");
        }
        reopenMarked(open, false);
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
        reopenMarked(open, true);
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

  /**
   * Closes the image (making every write durable), sets or clears its read-only mark, and opens it
   * again: read-only when marked, so its header, which clones check, never changes. The caller
   * holds the image's write lock.
   */
  private void reopenMarked(OpenImage open, boolean readOnly) throws IOException {
    open.image().close();
    try {
      directory.setReadOnly(open.name(), readOnly);
    } finally {
      // Reopened whatever happened, so the registry never holds a closed image.
      open.image = directory.open(open.name(), bases, backgroundCopies);
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
        List<String> clones = clonesOf(name);
        if (!clones.isEmpty()) {
          throw new ImageInUseException(name, clones, "delete them or let them finish prefetching");
        }
        if (!openImages.remove(name, open)) {
          throw new ImageNotFoundException(name);
        }
        observer.imageClosed(name);
        // The file goes while the monitor is still held: every look-up that misses the registry
        // opens the file under this monitor, so between the removal above and the unlink nobody
        // may find the file, or the deleted image would come back and take writes into a file
        // that no longer has a name.
        try {
          open.image().close();
        } catch (IOException e) {
          log.warn("Closing image {} before deleting it failed: {}", name, e.getMessage());
        }
        deleteFile(name);
      }
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
    return underLock(
        open,
        lock,
        image -> {
          CheckReport report = image.check(repair);
          return new CheckResult(
              report.status().name().toLowerCase(Locale.ROOT),
              report.leakedChunks(),
              report.reclaimedChunks(),
              report.problems());
        });
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
      throw translate(open, e);
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
    OpenImage open = lookup(name);
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
          throw translate(open, e);
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
    OpenImage open = lookup(name);
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
      checkSpace(open, offsetBytes, lengthBytes);
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
      throw translate(open, e);
    }
  }

  private void flushImage(OpenImage open) {
    try {
      timedFlush(open.image());
    } catch (IOException e) {
      throw translate(open, e);
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
    OpenImage open = lookup(name);
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
    OpenImage open = lookup(name);
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
                e.offsetBytes(), e.lengthBytes(), e.state().name().toLowerCase(Locale.ROOT)));
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

  /** Counts image files, not open images, so files that failed to open count too. */
  private void checkImageCount() {
    int imageCount;
    try {
      imageCount = directory.names().size();
    } catch (IOException e) {
      throw new StorageIoException("(data directory)", "the data directory cannot be listed", e);
    }
    if (imageCount >= limits.maxImages()) {
      throw InsufficientStorageException.imageCount(imageCount, limits.maxImages());
    }
  }

  /**
   * What the chunks of all open images take together, for the storage quota. Concurrent writes are
   * not counted until they have allocated, so they can overshoot the quota by at most their own
   * size; the quota bounds growth, it is not an exact reservation.
   */
  private long usedBytesOfAllImages() {
    long used = 0;
    for (OpenImage open : openImages.values()) {
      try {
        used += open.image().stats().usedBytes();
      } catch (ImageClosedException e) {
        // Deleted meanwhile: its chunks are gone.
      }
    }
    return used;
  }

  private void checkSpace(OpenImage open, long offsetBytes, long lengthBytes) {
    long needed = open.image().bytesToAllocate(offsetBytes, lengthBytes);
    if (needed == 0) {
      return;
    }
    long available = allocatable().bytes();
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
    String diskFull = StorageFull.reasonOf(e);
    if (diskFull != null) {
      return InsufficientStorageException.diskFull(open.name(), diskFull);
    }
    return new StorageIoException(open.name(), withoutDirectory(e), e);
  }

  /** The engine's message names files by path; clients see only the file name. */
  private String withoutDirectory(Throwable e) {
    String message = String.valueOf(e.getMessage());
    return message.replace(directory.root() + java.io.File.separator, "");
  }

  /**
   * Closes every open image, setting its clean-shutdown flag. Clones are closed before their bases,
   * so no clone is left reading through a closed base.
   */
  @Override
  public void close() {
    while (!openImages.isEmpty()) {
      Set<String> bases = new HashSet<>();
      for (OpenImage open : openImages.values()) {
        String base = open.image().baseLocator();
        if (base != null) {
          bases.add(base);
        }
      }
      List<OpenImage> leaves = new ArrayList<>();
      for (OpenImage open : openImages.values()) {
        if (!bases.contains(open.name())) {
          leaves.add(open);
        }
      }
      if (leaves.isEmpty()) {
        // Cannot happen (chains have no cycles); close the rest rather than loop forever.
        leaves.addAll(openImages.values());
      }
      leaves.forEach(this::closeOne);
    }
  }

  private void closeOne(OpenImage open) {
    Lock lock = open.lock().writeLock();
    lock.lock();
    try {
      if (openImages.remove(open.name(), open)) {
        observer.imageClosed(open.name());
        open.image().close();
      }
    } catch (IOException | RuntimeException e) {
      log.error("Closing image {} failed; it will be recovered at next open", open.name(), e);
    } finally {
      lock.unlock();
    }
  }
}
