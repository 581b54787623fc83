package dev.fvdisk.service;

import dev.fvdisk.engine.Extent;
import dev.fvdisk.engine.Image;
import dev.fvdisk.engine.ImageClosedException;
import dev.fvdisk.engine.SnapshotInfo;
import java.io.IOException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.Lock;
import org.jspecify.annotations.Nullable;

/**
 * The snapshots of images: take, list, describe, delete, and attach to one to read it as a
 * read-only {@link VirtualDisk} ({@link SnapshotDisk}). {@link ImageService} hands its snapshot
 * calls here.
 *
 * <p>Taking and deleting a snapshot hold the image entry's lock exclusively, so the checks that
 * turn into problems (name taken, the limit, read-only, a clone still reading its base) see the
 * same snapshots as the engine call after them; listing and reading hold it shared. The engine
 * waits for reads and writes in progress itself; attached writers need not detach.
 *
 * <p>A snapshot is identified for HTTP validators by the image's id and the snapshot's id, which
 * the engine never gives twice in an image: a snapshot deleted and taken again under the same name
 * is another snapshot, with another identity.
 */
final class ImageSnapshots {

  /** The engine's limit: its snapshot directory has room for this many per image. */
  static final int MAX_SNAPSHOTS = 255;

  private final ImageRegistry registry;
  private final EngineErrors errors;
  private final ImageServiceObserver observer;

  ImageSnapshots(ImageRegistry registry, EngineErrors errors, ImageServiceObserver observer) {
    this.registry = registry;
    this.errors = errors;
    this.observer = observer;
  }

  SnapshotDescriptor create(String imageName, String snapshotName) {
    OpenImage open = registry.lookup(imageName);
    if (!ImageDirectory.isValidName(snapshotName)) {
      throw new InvalidValueException(
          "snapshot name \""
              + snapshotName
              + "\" does not match "
              + ImageDirectory.NAME.pattern()
              + " (or is . or ..)");
    }
    return underLock(
        open,
        true,
        image -> {
          if (image.isReadOnly()) {
            throw new ImageReadOnlyException(imageName, "clear readOnly to take a snapshot");
          }
          if (image.findSnapshot(snapshotName) != null) {
            throw new SnapshotExistsException(imageName, snapshotName);
          }
          if (image.stats().snapshotCount() >= MAX_SNAPSHOTS) {
            throw new SnapshotLimitException(imageName, MAX_SNAPSHOTS);
          }
          try {
            return describe(image.createSnapshot(snapshotName));
          } catch (IllegalArgumentException e) {
            // The checks above cover the engine's reasons; a reason they missed is still the
            // client's value, not a server failure.
            throw new InvalidValueException(errors.withoutDirectory(e));
          }
        });
  }

  List<SnapshotDescriptor> list(String imageName) {
    OpenImage open = registry.lookup(imageName);
    return underLock(
        open,
        false,
        image -> {
          List<SnapshotDescriptor> all = new ArrayList<>();
          for (SnapshotInfo info : image.snapshots()) {
            all.add(describe(info));
          }
          return all;
        });
  }

  SnapshotDescriptor describe(String imageName, String snapshotName) {
    OpenImage open = registry.lookup(imageName);
    return underLock(open, false, image -> describe(existing(image, imageName, snapshotName)));
  }

  void delete(String imageName, String snapshotName) {
    OpenImage open = registry.lookup(imageName);
    underLock(
        open,
        true,
        image -> {
          if (image.isReadOnly()) {
            existing(image, imageName, snapshotName);
            throw new ImageReadOnlyException(imageName, "clear readOnly to delete a snapshot");
          }
          if (!ImageDirectory.isValidName(snapshotName)) {
            throw new SnapshotNotFoundException(imageName, snapshotName);
          }
          List<String> clones = registry.clonesOf(new BaseName(imageName, snapshotName));
          if (!clones.isEmpty() && image.findSnapshot(snapshotName) != null) {
            throw new SnapshotInUseException(imageName, snapshotName, clones);
          }
          try {
            image.deleteSnapshot(snapshotName);
          } catch (IllegalArgumentException e) {
            // The engine's one reason: no snapshot of that name.
            throw new SnapshotNotFoundException(imageName, snapshotName);
          }
          open.snapshotDeleted();
          return null;
        });
  }

  /**
   * The page of ranges in {@code [offsetBytes, offsetBytes + lengthBytes)} (defaults: the whole of
   * {@code to}) where snapshot {@code to}, or the live image when it is null, may differ from
   * snapshot {@code from}; a span that ends past {@code to} is clipped, as a map's is.
   *
   * @throws SnapshotNotFoundException when either snapshot does not exist
   * @throws InvalidValueException when {@code to} is not newer than {@code from}, or the length is
   *     not positive
   * @throws RangeOutsideDiskException when the offset is not inside {@code to}
   */
  ChangedRanges changes(
      String imageName,
      String from,
      @Nullable String to,
      @Nullable Long offsetBytes,
      @Nullable Long lengthBytes,
      int maxRanges) {
    OpenImage open = registry.lookup(imageName);
    return underLock(
        open,
        false,
        image -> {
          SnapshotInfo first = existing(image, imageName, from);
          SnapshotInfo last = to == null ? null : existing(image, imageName, to);
          // Ids ascend with age.
          if (last != null && last.id() <= first.id()) {
            throw new InvalidValueException(
                "to (\"" + to + "\") must name a snapshot taken after from (\"" + from + "\")");
          }
          long size = last == null ? image.sizeBytes() : last.sizeBytes();
          DiskSpan span =
              DiskSpan.clipped(offsetBytes, lengthBytes, size, "the " + size + " bytes compared");
          // One more than a page: whether another page follows is known without a second call.
          List<Extent> runs =
              image.changes(from, to, span.offsetBytes(), span.lengthBytes(), maxRanges + 1);
          List<ChangedRanges.Range> ranges = new ArrayList<>();
          for (Extent run : runs.subList(0, Math.min(maxRanges, runs.size()))) {
            ranges.add(new ChangedRanges.Range(run.offsetBytes(), run.lengthBytes()));
          }
          Long next = runs.size() > maxRanges ? runs.get(maxRanges).offsetBytes() : null;
          return new ChangedRanges(ranges, next);
        });
  }

  VirtualDisk attach(String imageName, String snapshotName) {
    OpenImage open = registry.lookup(imageName);
    return underLock(
        open,
        false,
        image -> {
          SnapshotInfo info = existing(image, imageName, snapshotName);
          return new SnapshotDisk(
              open,
              info,
              image.id() + "-s" + info.id(),
              open.snapshotDeletions(),
              errors,
              observer);
        });
  }

  /**
   * The snapshot's current entry, or null when it was deleted, or deleted and taken again under its
   * name (a different snapshot); the caller holds the entry's lock.
   */
  static @Nullable SnapshotInfo current(Image image, SnapshotInfo snapshot) {
    SnapshotInfo now = image.findSnapshot(snapshot.name());
    return now != null && now.id() == snapshot.id() ? now : null;
  }

  private static SnapshotInfo existing(Image image, String imageName, String snapshotName) {
    SnapshotInfo info =
        ImageDirectory.isValidName(snapshotName) ? image.findSnapshot(snapshotName) : null;
    if (info == null) {
      throw new SnapshotNotFoundException(imageName, snapshotName);
    }
    return info;
  }

  private static SnapshotDescriptor describe(SnapshotInfo info) {
    return new SnapshotDescriptor(
        info.name(),
        Instant.ofEpochMilli(info.createdAtMillis()),
        info.sizeBytes(),
        info.exclusiveBytes());
  }

  /** One call on the entry's image, under its lock. */
  @FunctionalInterface
  private interface ImageCall<T> {
    T run(Image image) throws IOException;
  }

  /**
   * Runs {@code call} with the entry's lock held, exclusively or shared, turning engine failures
   * into the service's exceptions: a closed or retired image is a deleted one.
   */
  private <T> T underLock(OpenImage open, boolean exclusive, ImageCall<T> call) {
    Lock lock = exclusive ? open.lock().writeLock() : open.lock().readLock();
    lock.lock();
    try {
      if (open.isRetired()) {
        throw new ImageNotFoundException(open.name());
      }
      return call.run(open.image());
    } catch (IOException e) {
      throw errors.translate(open.name(), e);
    } catch (ImageClosedException e) {
      throw new ImageNotFoundException(open.name());
    } finally {
      lock.unlock();
    }
  }
}
