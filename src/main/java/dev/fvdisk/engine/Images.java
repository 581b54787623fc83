package dev.fvdisk.engine;

import dev.fvdisk.engine.io.FileStorage;
import dev.fvdisk.engine.io.Storage;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.List;
import org.jspecify.annotations.Nullable;

/**
 * Creates, opens and checks image files.
 *
 * <p>A new image is built under a temporary name and renamed into place only once it is complete
 * and forced, and the directory is forced after the rename: a crash during creation leaves either
 * no image or a whole one, never a half-initialised file under the real name.
 */
public final class Images {

  /** The on-disk format version this engine writes and reads. */
  public static final int FORMAT_VERSION = Header.FORMAT_VERSION;

  private static final String TEMPORARY_SUFFIX = ".creating";

  private Images() {}

  /**
   * Creates a new image file at {@code path} and opens it for writing. Durable on return: the file
   * and its directory entry survive a crash.
   *
   * @throws FileAlreadyExistsException if {@code path} exists
   */
  public static Image create(Path path, ImageOptions options) throws IOException {
    return create(path, options, null, "");
  }

  /**
   * Creates a new clone of {@code base} at {@code path} and opens it for writing; durable on return
   * like {@link #create(Path, ImageOptions)}. See {@link Image#create(Storage, ImageOptions,
   * BaseImage, String)}.
   */
  public static Image create(
      Path path, ImageOptions options, @Nullable BaseImage base, String locator)
      throws IOException {
    return create(path, options, base, locator, SpaceBudget.UNLIMITED);
  }

  /**
   * Creates an image as {@link #create(Path, ImageOptions, BaseImage, String)} does and opens it
   * with {@code spaceBudget} limiting its copies from the base.
   */
  public static Image create(
      Path path,
      ImageOptions options,
      @Nullable BaseImage base,
      String locator,
      SpaceBudget spaceBudget)
      throws IOException {
    if (Files.exists(path, LinkOption.NOFOLLOW_LINKS)) {
      throw new FileAlreadyExistsException(path.toString());
    }
    Path temporary = path.resolveSibling(path.getFileName() + TEMPORARY_SUFFIX);
    Files.deleteIfExists(temporary);
    try (Storage storage = FileStorage.createNew(temporary)) {
      Image.create(storage, options, base, locator).close();
    } catch (IOException | RuntimeException e) {
      Files.deleteIfExists(temporary);
      throw e;
    }
    Files.move(temporary, path, StandardCopyOption.ATOMIC_MOVE);
    forceDirectory(path.toAbsolutePath().getParent());
    return open(path, base == null ? BaseResolver.NONE : name -> base, spaceBudget);
  }

  /**
   * Opens an image file for writing, or for reading only when it is marked read-only, reading a
   * clone's base through {@code bases}.
   */
  public static Image open(Path path, BaseResolver bases) throws IOException {
    return open(path, bases, SpaceBudget.UNLIMITED);
  }

  /**
   * Opens an image file as {@link #open(Path, BaseResolver)} does; a clone asks {@code spaceBudget}
   * before its copies from the base (prefetching, copy-on-read) take more space.
   */
  public static Image open(Path path, BaseResolver bases, SpaceBudget spaceBudget)
      throws IOException {
    boolean readOnly;
    try (Storage probe = FileStorage.open(path, false)) {
      readOnly = Header.read(probe).readOnly();
    }
    FileStorage storage = FileStorage.open(path, !readOnly);
    try {
      return Image.open(storage, !readOnly, bases, PrefetchTuning.DEFAULTS, spaceBudget);
    } catch (IOException | RuntimeException e) {
      storage.close();
      throw e;
    }
  }

  /**
   * Opens the image in {@code storage}, which must be open for writing: for writing, or for reading
   * only when the image is marked read-only, as {@link #open(Path, BaseResolver, SpaceBudget)} does
   * for a file. The image owns the storage from then on and closes it.
   */
  public static Image open(Storage storage, BaseResolver bases, SpaceBudget spaceBudget)
      throws IOException {
    boolean readOnly = Header.read(storage).readOnly();
    return Image.open(storage, !readOnly, bases, PrefetchTuning.DEFAULTS, spaceBudget);
  }

  /** Opens an existing image file; see {@link Image#open(Storage, boolean)}. */
  public static Image open(Path path, boolean writable) throws IOException {
    FileStorage storage = FileStorage.open(path, writable);
    try {
      return Image.open(storage, writable);
    } catch (IOException | RuntimeException e) {
      storage.close();
      throw e;
    }
  }

  /**
   * Checks an image that is not open, without changing it: header copies, table checksum, journal
   * records (replayed in memory), chunk references and leaks.
   */
  public static CheckReport check(Storage storage) throws IOException {
    RecoveredMetadata recovered;
    try {
      recovered = RecoveredMetadata.recover(storage);
    } catch (CorruptImageException e) {
      return CheckReport.of(List.of(), 0, List.of(e.getMessage()));
    }
    return CheckReport.of(recovered.leakedChunks(), 0, recovered.problems());
  }

  /** Checks an image file that is not open; see {@link #check(Storage)}. */
  public static CheckReport check(Path path) throws IOException {
    try (Storage storage = FileStorage.open(path, false)) {
      return check(storage);
    }
  }

  /** Marks a closed image file read-only or clears the mark; see {@link Image#setReadOnly}. */
  public static void setReadOnly(Path path, boolean readOnly) throws IOException {
    try (Storage storage = FileStorage.open(path, true)) {
      Image.setReadOnly(storage, readOnly);
    }
  }

  /** Forces a directory, so that a rename or delete inside it survives a crash. */
  public static void forceDirectory(Path directory) throws IOException {
    try (FileChannel channel = FileChannel.open(directory, StandardOpenOption.READ)) {
      channel.force(true);
    }
  }
}
