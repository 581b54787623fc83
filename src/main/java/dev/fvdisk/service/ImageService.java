package dev.fvdisk.service;

import dev.fvdisk.engine.CheckReport;
import dev.fvdisk.engine.Image;
import dev.fvdisk.engine.ImageClosedException;
import dev.fvdisk.engine.ImageOptions;
import dev.fvdisk.engine.ImageStats;
import dev.fvdisk.engine.Images;
import dev.fvdisk.engine.PrefetchStatus;
import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.locks.Lock;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The way into the service: the lifecycle of images (list, describe, create, update, delete,
 * check), their snapshots, the storage figures, and {@linkplain #attach attaching} to an image to
 * read and write it as a {@link VirtualDisk}, or to a snapshot to read it ({@link
 * #attachSnapshot}).
 *
 * <p>The open images live in an {@link ImageRegistry}; what writes may allocate is the {@link
 * SpacePolicy}'s business. Engine {@code IOException}s never leave the service: they become {@link
 * ServiceException}s. See the package documentation for the locks.
 */
public class ImageService implements AutoCloseable {

  private static final Logger log = LoggerFactory.getLogger(ImageService.class);

  /**
   * How long a delete, marking an image read-only and a shutdown wait for attached writers. An HTTP
   * write is attached for its request only, so this covers all but uploads to a very slow client.
   */
  static final Duration WRITER_WAIT = Duration.ofSeconds(5);

  private final ImageDirectory directory;
  private final ServiceLimits limits;
  private final ImageServiceObserver observer;
  private final EngineErrors errors;
  private final ImageRules rules;
  private final SpacePolicy space;
  private final ImageRegistry registry;
  private final StagingArea staging;
  private final ImageSnapshots snapshots;
  private @Nullable Compactor compactor;
  private @Nullable ScheduledExecutorService reopener;
  private @Nullable ScheduledExecutorService leaseKeeper;

  public ImageService(ImageDirectory directory, ServiceLimits limits) {
    this(directory, limits, ImageServiceObserver.NONE);
  }

  public ImageService(
      ImageDirectory directory, ServiceLimits limits, ImageServiceObserver observer) {
    this(directory, limits, observer, WRITER_WAIT);
  }

  ImageService(
      ImageDirectory directory,
      ServiceLimits limits,
      ImageServiceObserver observer,
      Duration writerWait) {
    this.directory = directory;
    this.limits = limits;
    this.observer = observer;
    this.errors = new EngineErrors(directory);
    this.rules = new ImageRules(limits);
    this.space = new SpacePolicy(directory, limits, this::usedBytesOfAllImages, errors);
    this.registry =
        new ImageRegistry(
            directory, errors, observer, space.backgroundCopies(), writerWait.toNanos());
    this.staging = new StagingArea(directory.stagingDirectory(), space, errors);
    this.snapshots = new ImageSnapshots(registry, errors, observer);
  }

  private long usedBytesOfAllImages() {
    return registry.usedBytes();
  }

  public ServiceLimits limits() {
    return limits;
  }

  /**
   * Opens every image file of the data directory; failures are remembered, not thrown. Also empties
   * the staging area of bodies an earlier run was still checking when it stopped.
   */
  public void openAll() {
    staging.clear();
    registry.openAll();
  }

  /** Where front doors stage a write's body that they check before writing it. */
  public StagingArea staging() {
    return staging;
  }

  /**
   * Starts giving the space of freed chunks back to the file system in the background, as {@code
   * policy} says (see {@link Compactor}); until then files shrink only when images close. Stopped
   * by {@link #close}.
   */
  public synchronized void startCompaction(CompactionPolicy policy) {
    if (compactor != null) {
      throw new IllegalStateException("compaction runs already");
    }
    compactor = newCompactor(policy);
    compactor.start();
  }

  /** A compactor over this service's images that is not started; tests call its tick directly. */
  Compactor newCompactor(CompactionPolicy policy) {
    return new Compactor(policy, registry::openEntries, observer);
  }

  /**
   * Opens again every image that latched after a failed flush, where its storage allows it (a
   * bucket: see {@link ImageDirectory#reopensLatchedImages}); one that cannot be opened yet stays
   * latched until the next call. Returns how many were reopened.
   */
  public int reopenLatchedImages() {
    if (!directory.reopensLatchedImages()) {
      return 0;
    }
    int reopened = 0;
    for (OpenImage open : registry.openEntries()) {
      if (!open.image().isFailed()) {
        continue;
      }
      var lock = open.lock().writeLock();
      lock.lock();
      try {
        if (open.image().isFailed()) {
          registry.reopenLatched(open);
          reopened++;
          log.info("Image {} reopened from its storage after it latched", open.name());
        }
      } catch (IOException | RuntimeException e) {
        log.debug("Image {} stays latched: {}", open.name(), e.toString());
      } finally {
        lock.unlock();
      }
    }
    return reopened;
  }

  /**
   * Calls {@link #reopenLatchedImages} every {@code period} in the background until {@link #close};
   * does nothing where latched images are not reopened.
   */
  public synchronized void startReopeningLatchedImages(java.time.Duration period) {
    if (!directory.reopensLatchedImages() || reopener != null) {
      return;
    }
    reopener =
        java.util.concurrent.Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "reopen-latched-images");
              t.setDaemon(true);
              return t;
            });
    long millis = period.toMillis();
    reopener.scheduleWithFixedDelay(
        this::reopenLatchedImages, millis, millis, java.util.concurrent.TimeUnit.MILLISECONDS);
  }

  /**
   * Renews, in the background until {@link #close}, the leases of the images this instance serves
   * where several instances share a bucket, publishing each image's descriptor for the others'
   * listings; does nothing for a single instance.
   */
  public synchronized void startRenewingLeases() {
    Duration period = directory.leases().renewalPeriod();
    if (period == null || leaseKeeper != null) {
      return;
    }
    leaseKeeper =
        java.util.concurrent.Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "renew-image-leases");
              t.setDaemon(true);
              return t;
            });
    long millis = Math.max(1, period.toMillis());
    leaseKeeper.scheduleWithFixedDelay(
        this::renewLeases, millis, millis, java.util.concurrent.TimeUnit.MILLISECONDS);
  }

  /** Renews the leases once; the background task's body, which tests call directly. */
  void renewLeases() {
    try {
      registry.renewLeases(ImageService::describe);
    } catch (RuntimeException e) {
      // The task must survive anything, or the leases would run out silently.
      log.warn("Renewing image leases failed: {}", e.toString());
    }
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
    // What snapshots hold counts against the quota as writes are checked (SpacePolicy).
    long held = images.stream().mapToLong(ImageUsage::snapshotBytes).sum();
    return new StorageSnapshot(
        directory.root(),
        directory.isWritable(),
        usable,
        limits.minFreeBytes(),
        space.allocatable(usable, used + held).bytes(),
        images,
        registry.failureReasons(),
        latched);
  }

  // ---- the block-device port ----

  /**
   * Attaches to an image, to read and write it as a block device until the attachment is closed.
   * The image is looked up once here; calls on the attachment find it without a look-up. A {@link
   * Access#READ_WRITE} attachment pins the image; it is granted while the image is marked read-only
   * too, and its writes are refused then.
   *
   * @throws ImageNotFoundException when no such image exists, or it is being deleted
   * @throws ImageCorruptException when its file failed to open
   */
  public VirtualDisk attach(String name, Access access) {
    return attach(name, access, false);
  }

  /**
   * Attaches for a session of many requests, such as an NBD connection: like {@link #attach(String,
   * Access)}, but each read and write is reported to the monitoring as it happens rather than all
   * of them once at close, so the meters count requests, not sessions.
   */
  public VirtualDisk attachSession(String name, Access access) {
    return attach(name, access, true);
  }

  private VirtualDisk attach(String name, Access access, boolean reportEachCall) {
    OpenImage open = registry.lookup(name);
    if (access == Access.READ_WRITE) {
      open.pinWriter();
    }
    return new Attachment(open, access, space, errors, observer, reportEachCall);
  }

  /** Makes every earlier write of the image durable, when its version is the expected one. */
  public void flush(String name, @Nullable ExpectedVersion expected) {
    try (VirtualDisk disk = attach(name, Access.READ_ONLY)) {
      if (expected != null) {
        disk.holdExclusively(expected);
      }
      disk.flush();
    }
  }

  // ---- snapshots ----

  /**
   * Takes a snapshot of everything written to the image before this call; durable on return, and
   * copies nothing: from then on the first write into each chunk keeps the chunk's old bytes for
   * the snapshot. A clone that still reads its base writes a copy of its block bitmap, so the
   * snapshot reads the blocks it had not copied from the base. Waits for the reads and writes in
   * progress; attached writers stay attached.
   *
   * @throws InvalidValueException when the name does not follow the rule for image names
   * @throws SnapshotExistsException when the image has a snapshot of that name
   * @throws SnapshotLimitException when the image has 255 snapshots
   * @throws ImageReadOnlyException when the image is marked read-only
   */
  public SnapshotDescriptor createSnapshot(String image, String snapshot) {
    return snapshots.create(image, snapshot);
  }

  /** The image's snapshots, oldest first. */
  public List<SnapshotDescriptor> snapshots(String image) {
    return snapshots.list(image);
  }

  /**
   * One snapshot of the image.
   *
   * @throws SnapshotNotFoundException when there is no such snapshot
   */
  public SnapshotDescriptor describeSnapshot(String image, String snapshot) {
    return snapshots.describe(image, snapshot);
  }

  /**
   * Deletes a snapshot, any one; durable on return. The chunk versions only it held are freed.
   *
   * @throws SnapshotNotFoundException when there is no such snapshot
   * @throws ImageReadOnlyException when the image is marked read-only
   */
  public void deleteSnapshot(String image, String snapshot) {
    snapshots.delete(image, snapshot);
  }

  /**
   * One page of the ranges where snapshot {@code to}, or the live image when it is null, may read
   * differently from snapshot {@code from}: whole chunks written or zeroed after {@code from} was
   * taken (moves by compaction are no change). A backup that holds {@code from} and copies these
   * ranges from {@code to} holds {@code to}. Pages hold the configured number of map extents.
   *
   * @param offsetBytes where the span starts; null for 0
   * @param lengthBytes how long it is; null for up to the end of {@code to}; clipped to it
   * @throws SnapshotNotFoundException when either snapshot does not exist
   * @throws InvalidValueException when {@code to} is not newer than {@code from}
   * @throws RangeOutsideDiskException when the offset is not inside {@code to}
   */
  public ChangedRanges changes(
      String image,
      String from,
      @Nullable String to,
      @Nullable Long offsetBytes,
      @Nullable Long lengthBytes) {
    return snapshots.changes(image, from, to, offsetBytes, lengthBytes, limits.mapPageExtents());
  }

  /**
   * Attaches to a snapshot, to read it as a read-only block device until closed (see {@link
   * SnapshotDisk}); its version never changes. Pins nothing, like a {@link Access#READ_ONLY}
   * attachment.
   *
   * @throws SnapshotNotFoundException when there is no such snapshot
   */
  public VirtualDisk attachSnapshot(String image, String snapshot) {
    return snapshots.attach(image, snapshot);
  }

  // ---- lifecycle ----

  public List<ImageDescriptor> list() {
    List<ImageDescriptor> descriptors = new ArrayList<>();
    for (String name : registry.names()) {
      OpenImage image;
      try {
        image = registry.lookupForListing(name);
      } catch (ImageElsewhereException e) {
        // Served by another instance: listed as it last published itself there.
        if (e.descriptor() != null) {
          descriptors.add(e.descriptor());
        }
        continue;
      } catch (ImageUnavailableException e) {
        continue; // the store did not answer for it; it is listed again once it does
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
    OpenImage image = registry.lookup(name);
    try {
      return describe(image);
    } catch (ImageClosedException e) {
      throw new ImageNotFoundException(name);
    }
  }

  private static ImageDescriptor describe(OpenImage open) {
    Image image = open.image();
    // The version is taken before the values, so a change racing with this call leaves a stale
    // version (a later conditional change fails) rather than new values under an old version.
    String version = image.changeTag();
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
        stats.snapshotBytes(),
        stats.snapshotCount(),
        Instant.ofEpochMilli(image.createdAtMillis()),
        version);
  }

  public ImageDescriptor create(CreateImageCommand command) {
    ImageDescriptor created = createImage(command);
    try {
      // Other instances list an image by what its lease says: say it at once.
      directory.leases().renew(created.name(), created);
    } catch (IOException e) {
      log.debug("The new image {} is listed elsewhere after its first renewal", created.name());
    }
    return created;
  }

  private ImageDescriptor createImage(CreateImageCommand command) {
    String name = command.name();
    if (!ImageDirectory.isValidName(name)) {
      throw new InvalidRequestException(
          "name \"" + name + "\" does not match " + ImageDirectory.NAME.pattern());
    }
    ImageRules.checkPrefetchDelay(command.prefetchStartDelaySeconds());
    if (command.base() == null) {
      if (Boolean.TRUE.equals(command.copyOnRead())
          || Boolean.TRUE.equals(command.prefetchEnabled())) {
        throw new InvalidValueException(
            "copyOnRead and prefetch copy from a base image; give \"base\" to use them");
      }
      ImageOptions options = rules.optionsFor(command, null);
      return describe(registry.create(name, options, null, space::checkImageCount));
    }
    BaseName baseName = BaseName.parse(command.base());
    OpenImage base = registry.lookup(baseName.image());
    if (baseName.snapshot() == null) {
      return describe(createClone(command, new CloneBase(base, null)));
    }
    // The image's lock, held shared, keeps the snapshot from being deleted (which takes it
    // exclusively and then looks for clones) until the clone is registered.
    Lock lock = base.lock().readLock();
    lock.lock();
    try {
      Image image = base.image();
      if (!ImageDirectory.isValidName(baseName.snapshot())
          || image.findSnapshot(baseName.snapshot()) == null) {
        throw new SnapshotNotFoundException(baseName.image(), baseName.snapshot());
      }
      return describe(createClone(command, new CloneBase(base, baseName.snapshot())));
    } catch (ImageClosedException e) {
      throw new ImageNotFoundException(baseName.image());
    } finally {
      lock.unlock();
    }
  }

  /**
   * Creates a clone of a base that must be read-only (a snapshot always is) and leave room in the
   * chain.
   */
  private OpenImage createClone(CreateImageCommand command, CloneBase base) {
    if (base.snapshot() == null && !base.open().image().isReadOnly()) {
      throw new BaseNotReadOnlyException(base.open().name());
    }
    int depth = registry.chainDepth(base.open());
    if (depth + 1 > limits.maxChainDepth()) {
      throw new InvalidValueException(
          "a clone of \""
              + base.name()
              + "\" would make a chain of "
              + (depth + 1)
              + " images, more than the configured maximum of "
              + limits.maxChainDepth());
    }
    ImageOptions options = rules.optionsFor(command, base);
    return registry.create(command.name(), options, base, space::checkImageCount);
  }

  /**
   * Applies a merge patch. Marking the image read-only reopens it, so it first waits for attached
   * writers (see {@link Access#READ_WRITE}).
   *
   * @throws ImageAttachedException when writers stay attached while it should become read-only
   */
  public ImageDescriptor update(
      String name, ImageChanges changes, @Nullable ExpectedVersion expected) {
    ImageRules.checkPrefetchDelay(changes.prefetchStartDelaySeconds());
    OpenImage open = registry.lookup(name);
    boolean marksReadOnly = Boolean.TRUE.equals(changes.readOnly());
    if (marksReadOnly) {
      registry.drainWriters(open, "it was not made read-only; try again once they are done");
    }
    Lock lock = open.lock().writeLock();
    lock.lock();
    try {
      checkVersion(open, expected);
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
        // Clones of its snapshots do not mind: a snapshot never changes.
        List<String> clones = registry.clonesOf(new BaseName(name, null));
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
      if (marksReadOnly && !image.isReadOnly()) {
        registry.reopenMarked(open, true);
      }
      return describe(open);
    } catch (IOException e) {
      throw errors.translate(name, e);
    } catch (ImageClosedException e) {
      throw new ImageNotFoundException(name);
    } finally {
      lock.unlock();
      if (marksReadOnly) {
        open.endDrain();
      }
    }
  }

  /**
   * Deletes an image and its file; durable on return. Waits for attached writers first (see {@link
   * Access#READ_WRITE}); readers are cut off after the call they are in.
   *
   * @throws ImageInUseException when clones read through it
   * @throws ImageAttachedException when writers stay attached
   */
  public void delete(String name, @Nullable ExpectedVersion expected) {
    if (!ImageDirectory.isValidName(name)) {
      throw new ImageNotFoundException(name);
    }
    OpenImage open;
    try {
      // Through the look-up, so an image another instance serves is deleted there.
      open = registry.lookup(name);
    } catch (ImageCorruptException failedToOpen) {
      if (registry.deleteUnopened(name, expected)) {
        return;
      }
      open = registry.find(name);
      if (open == null) {
        throw new ImageNotFoundException(name);
      }
    }
    registry.drainWriters(open, "it was not deleted; try again once they are done");
    // The image's own lock is taken before the registry's monitor and never the other way round,
    // so waiting here for running calls does not hold up other images' lifecycle changes.
    Lock lock = open.lock().writeLock();
    lock.lock();
    try {
      checkVersion(open, expected);
      registry.delete(open);
    } finally {
      lock.unlock();
      open.endDrain();
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

  /** Refuses a conditional change of an image at another version; the caller holds its lock. */
  private static void checkVersion(OpenImage open, @Nullable ExpectedVersion expected) {
    if (expected != null) {
      String current = open.image().changeTag();
      if (!expected.matches(current)) {
        throw new VersionMismatchException(open.name(), current);
      }
    }
  }

  /**
   * Closes every open image, setting its clean-shutdown flag; clones before their bases. Attached
   * writers get a bounded time to finish first.
   */
  @Override
  public void close() {
    synchronized (this) {
      if (compactor != null) {
        compactor.close();
      }
      if (reopener != null) {
        reopener.shutdownNow();
      }
      if (leaseKeeper != null) {
        leaseKeeper.shutdownNow();
      }
    }
    registry.close();
  }
}
