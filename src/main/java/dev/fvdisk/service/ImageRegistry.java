package dev.fvdisk.service;

import dev.fvdisk.engine.BaseImageException;
import dev.fvdisk.engine.BaseResolver;
import dev.fvdisk.engine.Image;
import dev.fvdisk.engine.ImageClosedException;
import dev.fvdisk.engine.ImageOptions;
import dev.fvdisk.engine.ImageStats;
import dev.fvdisk.engine.SpaceBudget;
import dev.fvdisk.engine.StorageFull;
import java.io.IOException;
import java.nio.file.FileAlreadyExistsException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.Lock;
import java.util.function.Predicate;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The open images of the data directory, and the ones that failed to open.
 *
 * <p>Every image file is opened at start-up ({@link #openAll()}) or, when it appears later, on
 * first use: for writing, or for reading only when it is marked read-only. A clone's base is opened
 * first, through the same registry, so every image in a chain is open once and shared by all its
 * clones. {@link #close()} closes clones before their bases, which makes pending writes durable and
 * sets each image's clean-shutdown flag. An image that fails to open is remembered with its reason
 * and answered with an {@link ImageCorruptException} until the next restart.
 *
 * <p><b>Locking.</b> Entries come and go (open, create, delete) under one monitor. A change of one
 * image takes that image's own lock before the monitor, never the other way round, so waiting for
 * one image's writes does not hold up other images' lifecycle changes. Look-ups that find an entry
 * take no lock at all.
 */
final class ImageRegistry implements AutoCloseable {

  private static final Logger log = LoggerFactory.getLogger(ImageRegistry.class);

  private final ImageDirectory directory;
  private final ImageLeases leases;
  private final EngineErrors errors;
  private final ImageServiceObserver observer;
  private final SpaceBudget backgroundCopies;
  private final long pinWaitNanos;
  private final Map<String, OpenImage> openImages = new ConcurrentHashMap<>();
  private final Map<String, IOException> failedImages = new ConcurrentHashMap<>();
  private final Object lifecycleMonitor = new Object();
  private final Set<String> opening = new HashSet<>();

  /**
   * The engine asks for a clone's base by name ({@link BaseName}); it comes from (and stays in) the
   * registry.
   */
  private final BaseResolver bases =
      locator -> {
        BaseName name = BaseName.parse(locator);
        String image = name.image();
        OpenImage base = openImages.get(image);
        if (base == null && ImageDirectory.isValidName(image)) {
          synchronized (lifecycleMonitor) {
            base = openImages.containsKey(image) ? openImages.get(image) : tryOpen(image);
          }
        }
        if (base == null) {
          return null;
        }
        try {
          return new CloneBase(base, name.snapshot()).engineBase();
        } catch (IllegalArgumentException e) {
          return null; // no such snapshot
        }
      };

  /**
   * @param pinWaitNanos how long a delete, the read-only mark or a shutdown waits for attached
   *     writers before it refuses (or, for a shutdown, closes all the same)
   */
  ImageRegistry(
      ImageDirectory directory,
      EngineErrors errors,
      ImageServiceObserver observer,
      SpaceBudget backgroundCopies,
      long pinWaitNanos) {
    this.directory = directory;
    this.leases = directory.leases();
    this.errors = errors;
    this.observer = observer;
    this.backgroundCopies = backgroundCopies;
    this.pinWaitNanos = pinWaitNanos;
  }

  /** Opens every image file of the data directory; failures are remembered, not thrown. */
  void openAll() {
    synchronized (lifecycleMonitor) {
      for (String name : names()) {
        if (!openImages.containsKey(name)) {
          try {
            tryOpen(name);
          } catch (ImageElsewhereException | ImageUnavailableException e) {
            // Another instance serves it, or the store did not answer: opened on first use.
          }
        }
      }
      log.info("Opened {} image(s) in {}", openImages.size(), directory.root());
    }
  }

  /** Names of all image files, sorted. */
  List<String> names() {
    try {
      return directory.names();
    } catch (IOException e) {
      throw errors.directoryFailed("the data directory cannot be listed", e);
    }
  }

  /**
   * Opens an image (and, through the resolver, its bases); the caller holds the monitor.
   *
   * @throws ImageElsewhereException when another instance serves it
   * @throws ImageUnavailableException when the store did not answer whether one does
   */
  private @Nullable OpenImage tryOpen(String name) {
    if (!directory.exists(name)) {
      // Listed a moment ago and deleted since: not a failure to remember.
      return null;
    }
    try {
      leases.take(name);
    } catch (java.io.FileNotFoundException e) {
      return null; // deleted since, by another instance
    } catch (IOException e) {
      throw ImageUnavailableException.storeUnreachable(name, e);
    }
    if (!opening.add(name)) {
      // Only a damaged or hand-made file can name itself in its own chain of bases.
      failedImages.put(name, new BaseImageException(name + ": its chain of bases is a cycle"));
      return null;
    }
    try {
      return register(name, directory.open(name, bases, backgroundCopies));
    } catch (ImageElsewhereException | ImageUnavailableException e) {
      // A base served by another instance, or a store that did not answer: not this image's fault.
      throw e;
    } catch (dev.fvdisk.engine.spi.FencedException e) {
      // Another instance opened it at the same moment (their leases disagreed): try again later.
      throw ImageUnavailableException.takenOver(name, e);
    } catch (IOException | RuntimeException e) {
      log.warn("Image {} cannot be opened: {}", name, e.getMessage());
      failedImages.put(name, e instanceof IOException io ? io : new IOException(e.getMessage(), e));
      return null;
    } finally {
      opening.remove(name);
    }
  }

  /** Adds an open image; the caller holds the monitor. */
  private OpenImage register(String name, Image image) {
    OpenImage opened = new OpenImage(name, image);
    openImages.put(name, opened);
    failedImages.remove(name);
    observer.imageOpened(name, () -> openImages.get(name) == opened ? opened.usage() : null);
    return opened;
  }

  /**
   * The open image of this name, opened now when its file appeared since start-up.
   *
   * @throws ImageNotFoundException when no such image exists (or the name is not valid)
   * @throws ImageCorruptException when its file failed to open
   */
  OpenImage lookup(String name) {
    if (!ImageDirectory.isValidName(name)) {
      throw new ImageNotFoundException(name);
    }
    OpenImage open = openImages.get(name);
    if (open != null) {
      return servedHere(open);
    }
    synchronized (lifecycleMonitor) {
      open = openImages.get(name);
      if (open != null) {
        return servedHere(open);
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
        throw new ImageCorruptException(name, errors.withoutDirectory(failure), failure);
      }
      throw new ImageNotFoundException(name);
    }
  }

  /**
   * The entry, once this instance is sure it still serves the image: its lease is fresh, or renewed
   * now. An instance that finds another took the image over (it was paused past its lease) gives
   * the image up and fails this request; the next ones are sent to the new owner.
   */
  private OpenImage servedHere(OpenImage open) {
    String name = open.name();
    if (leases.fresh(name)) {
      return open;
    }
    boolean kept;
    try {
      kept = leases.renew(name, null);
    } catch (IOException e) {
      throw ImageUnavailableException.storeUnreachable(name, e);
    }
    if (!kept) {
      surrender(open);
      throw ImageUnavailableException.takenOver(
          name, new IOException("the lease of image " + name + " is another instance's now"));
    }
    return open;
  }

  /**
   * Renews the lease of every open image, publishing what {@code describe} says of it; an image
   * whose lease another instance took is given up. A store that does not answer leaves the leases
   * as they were, to be renewed at the next call (or taken by another instance once they run out:
   * then the log fences this one).
   */
  void renewLeases(java.util.function.Function<OpenImage, ImageDescriptor> describe) {
    for (OpenImage open : openImages.values()) {
      ImageDescriptor descriptor;
      try {
        descriptor = describe.apply(open);
      } catch (RuntimeException e) {
        descriptor = null; // closed or latched meanwhile; the last descriptor stays published
      }
      try {
        if (!leases.renew(open.name(), descriptor)) {
          log.warn("Image {} was taken over by another instance; giving it up", open.name());
          surrender(open);
        }
      } catch (IOException e) {
        log.debug("The lease of image {} was not renewed: {}", open.name(), e.toString());
      }
    }
  }

  /**
   * Gives up an image another instance took over: its storage refuses every further write at once,
   * the entry leaves the registry (attachments find it retired), and the image is closed; what it
   * had not flushed is lost, as the new owner's epoch already made sure.
   */
  void surrender(OpenImage open) {
    String name = open.name();
    directory.fence(name);
    synchronized (lifecycleMonitor) {
      if (!openImages.remove(name, open)) {
        return; // given up already, by a request or renewal that learned it first
      }
      open.retire();
      observer.imageClosed(name);
      leases.surrendered(name);
    }
    try {
      open.image().close();
    } catch (IOException | RuntimeException e) {
      log.debug("Closing image {} after it was taken over: {}", name, e.toString());
    }
  }

  /**
   * Like {@link #lookup}, but for a listing: null for a name that vanished or failed to open
   * (failures are remembered, not thrown).
   */
  @Nullable OpenImage lookupForListing(String name) {
    OpenImage image = openImages.get(name);
    if (image == null && !failedImages.containsKey(name)) {
      synchronized (lifecycleMonitor) {
        image = openImages.containsKey(name) ? openImages.get(name) : tryOpen(name);
      }
    }
    return image;
  }

  /** The open image of this name, without opening anything; null when it is not open. */
  @Nullable OpenImage find(String name) {
    return openImages.get(name);
  }

  /**
   * Creates an image file and adds it, once {@code admit} accepted it; all under the monitor, so no
   * two requests create the same name and the base cannot go away meanwhile.
   *
   * @param base the base of a clone, or null; a snapshot base must stay (the caller holds its
   *     image's lock)
   * @param admit last checks that need the monitor (the image count); throws to refuse
   */
  OpenImage create(String name, ImageOptions options, @Nullable CloneBase base, Runnable admit) {
    synchronized (lifecycleMonitor) {
      if (openImages.containsKey(name) || directory.exists(name)) {
        throw new ImageExistsException(name);
      }
      if (base != null && openImages.get(base.open().name()) != base.open()) {
        throw new ImageNotFoundException(base.open().name());
      }
      admit.run();
      Image image;
      try {
        image =
            directory.create(
                name,
                options,
                base == null ? null : base.engineBase(),
                base == null ? "" : base.name().toString(),
                backgroundCopies);
      } catch (FileAlreadyExistsException e) {
        throw new ImageExistsException(name);
      } catch (IOException e) {
        String diskFull = StorageFull.reasonOf(e);
        if (diskFull != null) {
          throw InsufficientStorageException.diskFull(name, diskFull);
        }
        throw new StorageIoException(name, errors.withoutDirectory(e), e);
      }
      return register(name, image);
    }
  }

  /**
   * Open images that read through exactly this base (an image, or one of its snapshots), sorted.
   */
  List<String> clonesOf(BaseName base) {
    return clones(locator -> locator.equals(base));
  }

  /** Open images that read through image {@code name} or any of its snapshots, sorted. */
  List<String> clonesReadingFrom(String name) {
    return clones(locator -> locator.image().equals(name));
  }

  private List<String> clones(Predicate<BaseName> readsFrom) {
    List<String> clones = new ArrayList<>();
    for (OpenImage open : openImages.values()) {
      String locator = open.image().baseLocator();
      if (locator != null && readsFrom.test(BaseName.parse(locator))) {
        clones.add(open.name());
      }
    }
    clones.sort(null);
    return clones;
  }

  /** How many images a chain holds from {@code top} down, as far as the registry knows it. */
  int chainDepth(OpenImage top) {
    int depth = 1;
    for (Image below = top.image(); below.baseLocator() != null; depth++) {
      OpenImage next = openImages.get(BaseName.parse(below.baseLocator()).image());
      if (next == null) {
        break;
      }
      below = next.image();
    }
    return depth;
  }

  /**
   * Keeps new writers of {@code open} out and waits, for a bounded time, until the attached ones
   * have gone. The caller must {@linkplain OpenImage#endDrain() end} the drain after its change.
   *
   * @param what the change that waits, for the refusal's message
   * @throws ImageAttachedException when writers stay attached past the wait
   */
  void drainWriters(OpenImage open, String what) {
    int stayed = open.drainWriters(pinWaitNanos);
    if (stayed > 0) {
      throw new ImageAttachedException(open.name(), stayed, what);
    }
  }

  /**
   * Closes the image (making every write durable), sets or clears its read-only mark, and opens it
   * again: read-only when marked, so its header, which clones check, never changes. The caller
   * holds the image's write lock.
   */
  void reopenMarked(OpenImage open, boolean readOnly) throws IOException {
    open.image().close();
    try {
      directory.setReadOnly(open.name(), readOnly);
    } finally {
      // Reopened whatever happened, so the registry never holds a closed image.
      open.replaceImage(directory.open(open.name(), bases, backgroundCopies));
    }
  }

  /**
   * Opens a latched image again from its storage and puts it in place of the latched one, which it
   * then closes; writes the latched one had not made durable are gone, as after a crash. When the
   * open fails (its store still does not answer), the latched image stays. The caller holds the
   * image's write lock.
   */
  void reopenLatched(OpenImage open) throws IOException {
    try {
      leases.take(open.name());
    } catch (ImageElsewhereException e) {
      surrender(open);
      throw e;
    }
    Image latched = open.image();
    open.replaceImage(directory.open(open.name(), bases, backgroundCopies));
    try {
      latched.close();
    } catch (IOException | RuntimeException e) {
      log.debug("Closing the latched image {} failed: {}", open.name(), e.toString());
    }
  }

  /**
   * Removes an open image and deletes its file. The caller holds the image's write lock.
   *
   * @throws ImageInUseException when clones read through it
   * @throws ImageNotFoundException when it left the registry meanwhile
   */
  void delete(OpenImage open) {
    String name = open.name();
    synchronized (lifecycleMonitor) {
      List<String> clones = clonesReadingFrom(name);
      if (!clones.isEmpty()) {
        throw new ImageInUseException(name, clones, "delete them or let them finish prefetching");
      }
      if (!openImages.remove(name, open)) {
        throw new ImageNotFoundException(name);
      }
      open.retire();
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
  }

  /**
   * Deletes an image file that is not open, such as one that failed to open, so a damaged file can
   * be removed. Such an image has no version, so only an unconditional delete or one that accepts
   * any version goes ahead. Returns false when the image was opened meanwhile.
   */
  boolean deleteUnopened(String name, @Nullable ExpectedVersion expected) {
    synchronized (lifecycleMonitor) {
      if (openImages.containsKey(name)) {
        return false;
      }
      if (!directory.exists(name)) {
        throw new ImageNotFoundException(name);
      }
      if (expected != null && !expected.anyVersion()) {
        throw new VersionMismatchException(name, "");
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
      throw new StorageIoException(name, errors.withoutDirectory(e), e);
    }
  }

  // ---- figures (read-only) ----

  /** Images that failed to open, with the engine's reason; for monitoring. */
  Map<String, String> failedImages() {
    Map<String, String> reasons = new TreeMap<>();
    failedImages.forEach((name, e) -> reasons.put(name, String.valueOf(e.getMessage())));
    return reasons;
  }

  /** Images that failed to open, with the reason as clients see it (no directory path). */
  Map<String, String> failureReasons() {
    Map<String, String> failed = new TreeMap<>();
    failedImages.forEach((name, e) -> failed.put(name, errors.withoutDirectory(e)));
    return failed;
  }

  /** The entries of every open image, sorted by name; takes no lock. */
  List<OpenImage> openEntries() {
    List<OpenImage> entries = new ArrayList<>(openImages.values());
    entries.sort(Comparator.comparing(OpenImage::name));
    return entries;
  }

  /** The figures of every open image, in no particular order; takes no image lock. */
  List<ImageUsage> usages() {
    List<ImageUsage> usages = new ArrayList<>();
    for (OpenImage open : openImages.values()) {
      usages.add(open.usage());
    }
    return usages;
  }

  /**
   * What the chunks of all open images take together, their snapshots' included, for the storage
   * quota. An image deleted meanwhile counts for nothing: its chunks are gone.
   */
  long usedBytes() {
    long used = 0;
    for (OpenImage open : openImages.values()) {
      try {
        ImageStats stats = open.image().stats();
        used += stats.usedBytes() + stats.snapshotBytes();
      } catch (ImageClosedException e) {
        // Deleted meanwhile.
      }
    }
    return used;
  }

  /**
   * Closes every open image, setting its clean-shutdown flag. Clones are closed before their bases,
   * so no clone is left reading through a closed base. Attached writers get a bounded time to
   * finish; then their image is closed all the same, and their next call finds it gone.
   */
  @Override
  public void close() {
    while (!openImages.isEmpty()) {
      Set<String> bases = new HashSet<>();
      for (OpenImage open : openImages.values()) {
        String base = open.image().baseLocator();
        if (base != null) {
          bases.add(BaseName.parse(base).image());
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

  /** Whether the failure, or one of its causes, is another writer's fence. */
  private static boolean fenced(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof dev.fvdisk.engine.spi.FencedException) {
        return true;
      }
    }
    return false;
  }

  private void closeOne(OpenImage open) {
    int stayed = open.drainWriters(pinWaitNanos);
    if (stayed > 0) {
      log.warn("Closing image {} with {} writer(s) still attached", open.name(), stayed);
    }
    Lock lock = open.lock().writeLock();
    lock.lock();
    try {
      if (openImages.remove(open.name(), open)) {
        open.retire();
        observer.imageClosed(open.name());
        open.image().close();
        leases.release(open.name());
      }
    } catch (IOException | RuntimeException e) {
      if (fenced(e)) {
        log.warn(
            "Image {} was taken over by another instance; what this one had not flushed is dropped",
            open.name());
      } else {
        log.error("Closing image {} failed; it will be recovered at next open", open.name(), e);
      }
    } finally {
      lock.unlock();
      if (stayed == 0) {
        open.endDrain();
      }
    }
  }
}
