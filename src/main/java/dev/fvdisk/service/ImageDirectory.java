package dev.fvdisk.service;

import dev.fvdisk.engine.BaseImage;
import dev.fvdisk.engine.BaseResolver;
import dev.fvdisk.engine.Image;
import dev.fvdisk.engine.ImageOptions;
import dev.fvdisk.engine.Images;
import dev.fvdisk.engine.SpaceBudget;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileStore;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import org.jspecify.annotations.Nullable;

/**
 * The data directory: which file holds which image, and the file-level operations on them.
 *
 * <p>Image {@code name} lives in {@code <data dir>/<name>.fvd}. Names are checked against {@link
 * #NAME} before any path is built, and a name can hold no separator, so every path stays directly
 * inside the directory. Symbolic links are never followed: a link named like an image is neither
 * listed nor opened, so nothing outside the directory can be reached through one.
 *
 * <p><b>Thread safety.</b> Stateless apart from the root path; callers serialise lifecycle changes.
 * Not final only so tests in this package can hand the service images on fault-injecting storage.
 */
public class ImageDirectory {

  /** The rule every image name follows. */
  public static final Pattern NAME = Pattern.compile("^[a-z0-9][a-z0-9._-]{0,62}$");

  static final String SUFFIX = ".fvd";

  private final Path root;
  private volatile @Nullable FileStore store;

  /**
   * @param root the data directory, already created and resolved to its real path
   */
  public ImageDirectory(Path root) {
    this.root = root;
  }

  public Path root() {
    return root;
  }

  /**
   * Where bodies wait to be checked ({@link StagingArea}). Never listed as an image: {@link #names}
   * takes regular files named {@code *.fvd} directly in the root, and this is a directory whose
   * name no image name can have.
   */
  Path stagingDirectory() {
    return root.resolve(StagingArea.DIRECTORY_NAME);
  }

  /**
   * Whether {@code name} can name an image: it follows {@link #NAME} (which already rules out
   * {@code .} and {@code ..}). Checked by hand because every request asks; {@code ImageNameTest}
   * holds it to the pattern.
   */
  public static boolean isValidName(String name) {
    int length = name.length();
    if (length == 0 || length > 63 || !isLowerLetterOrDigit(name.charAt(0))) {
      return false;
    }
    for (int i = 1; i < length; i++) {
      char c = name.charAt(i);
      if (!isLowerLetterOrDigit(c) && c != '.' && c != '_' && c != '-') {
        return false;
      }
    }
    return true;
  }

  private static boolean isLowerLetterOrDigit(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
  }

  Path pathOf(String name) {
    if (!isValidName(name)) {
      throw new IllegalArgumentException("not a valid image name: " + name);
    }
    return root.resolve(name + SUFFIX);
  }

  /** Whether a regular file (not a link) holds image {@code name}. */
  boolean exists(String name) {
    return Files.isRegularFile(pathOf(name), LinkOption.NOFOLLOW_LINKS);
  }

  /** Names of all image files, sorted; nothing in subdirectories (such as the staging area). */
  List<String> names() throws IOException {
    List<String> names = new ArrayList<>();
    try (DirectoryStream<Path> files = Files.newDirectoryStream(root, "*" + SUFFIX)) {
      for (Path file : files) {
        String fileName = file.getFileName().toString();
        String name = fileName.substring(0, fileName.length() - SUFFIX.length());
        if (isValidName(name) && Files.isRegularFile(file, LinkOption.NOFOLLOW_LINKS)) {
          names.add(name);
        }
      }
    }
    names.sort(null);
    return names;
  }

  /**
   * Creates the image file, a clone of {@code base} (named {@code baseName}) when one is given;
   * durable on return (file and directory entry).
   */
  Image create(
      String name,
      ImageOptions options,
      @Nullable BaseImage base,
      String baseName,
      SpaceBudget spaceBudget)
      throws IOException {
    return Images.create(pathOf(name), options, base, baseName, spaceBudget);
  }

  /** Opens for writing, or for reading when the image is marked read-only. */
  Image open(String name, BaseResolver bases, SpaceBudget spaceBudget) throws IOException {
    Path path = pathOf(name);
    if (!Files.isRegularFile(path, LinkOption.NOFOLLOW_LINKS)) {
      throw new IOException(path + " is not a regular file");
    }
    return Images.open(path, bases, spaceBudget);
  }

  /**
   * Whether an image that latched after a failed flush may be opened again while the service runs.
   * Not for a file: after a failed fsync the kernel may have dropped the dirty pages and still
   * serve them from its cache, so only a restart reads what the disk really holds. A bucket holds
   * exactly what its log says, whatever failed on the way.
   */
  boolean reopensLatchedImages() {
    return false;
  }

  /**
   * Which instance serves which image; {@link ImageLeases#NONE} (this one serves all) but for a
   * bucket shared by several instances.
   */
  ImageLeases leases() {
    return ImageLeases.NONE;
  }

  /**
   * Makes the open image's storage refuse every further write and flush at once, because another
   * instance took the image over; nothing to do for a file, which no other instance shares.
   */
  void fence(String name) {}

  /** Marks a closed image read-only or clears the mark; durable on return. */
  void setReadOnly(String name, boolean readOnly) throws IOException {
    Images.setReadOnly(pathOf(name), readOnly);
  }

  /** Deletes the image file; durable on return (the directory is forced). */
  void delete(String name) throws IOException {
    Files.deleteIfExists(pathOf(name));
    Images.forceDirectory(root);
  }

  /** Whether new files can be made in the data directory; false once it is gone or read-only. */
  boolean isWritable() {
    return Files.isDirectory(root) && Files.isWritable(root);
  }

  /**
   * Free space of the data directory's file system that this process may use: one {@code statvfs}
   * of the directory. The file store is looked up once, as the look-up reads the whole mount table
   * and cost more than the rest of an allocating 4 KiB write together.
   */
  long usableBytes() throws IOException {
    FileStore known = store;
    if (known == null) {
      known = Files.getFileStore(root);
      store = known;
    }
    return known.getUsableSpace();
  }
}
