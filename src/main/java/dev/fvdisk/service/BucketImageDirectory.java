package dev.fvdisk.service;

import dev.fvdisk.engine.BaseImage;
import dev.fvdisk.engine.BaseResolver;
import dev.fvdisk.engine.Image;
import dev.fvdisk.engine.ImageOptions;
import dev.fvdisk.engine.Images;
import dev.fvdisk.engine.SpaceBudget;
import dev.fvdisk.objectstore.BucketStorage;
import dev.fvdisk.objectstore.ObjectStore;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import org.jspecify.annotations.Nullable;

/**
 * Images kept in a bucket ({@code fvdisk.storage.backend=s3}): each image's bytes are a {@link
 * BucketStorage} under {@code images/<id>/}, and {@code names/<name>} holds the id of the image
 * that has that name. The data directory keeps what is local: the lock, the staging area and each
 * open image's cache file under {@code cache/}.
 *
 * <p>An id is new for every image, so a name deleted and created again never meets the old image's
 * objects, even ones a crash left behind. Creating writes the whole image first and its name last
 * (only if the name is free), so a crash leaves no name without an image; deleting removes the name
 * first, then the image's objects.
 *
 * <p><b>Thread safety.</b> The name-to-id map is concurrent; callers serialise lifecycle changes,
 * as for {@link ImageDirectory}. One service instance per bucket prefix (several instances, each
 * image with one writer, are for later).
 */
public final class BucketImageDirectory extends ImageDirectory {

  private static final String NAMES = "names/";

  private final ObjectStore store;
  private final Executor transfers;
  private final BucketStorage.Settings settings;
  private final Path cacheDirectory;
  private final ConcurrentHashMap<String, String> ids = new ConcurrentHashMap<>();

  /**
   * Reads the names in the bucket.
   *
   * @param root the data directory, already created and resolved to its real path
   * @param transfers runs the page uploads of a force in parallel
   */
  public BucketImageDirectory(
      Path root, ObjectStore store, Executor transfers, BucketStorage.Settings settings)
      throws IOException {
    super(root);
    this.store = store;
    this.transfers = transfers;
    this.settings = settings;
    this.cacheDirectory = root.resolve("cache");
    Files.createDirectories(cacheDirectory);
    // What a previous run cached may be older than the bucket (another writer, a lost force):
    // every image starts from the bucket alone.
    try (var leftovers = Files.newDirectoryStream(cacheDirectory, "*.cache")) {
      for (Path file : leftovers) {
        Files.deleteIfExists(file);
      }
    }
    for (String key : store.list(NAMES)) {
      String name = key.substring(NAMES.length());
      ByteBuffer id = store.get(key);
      if (id != null && isValidName(name)) {
        ids.put(name, StandardCharsets.UTF_8.decode(id).toString());
      }
    }
  }

  /** Where the bucket holds an image's objects. */
  private static String prefixOf(String id) {
    return "images/" + id + "/";
  }

  /**
   * A new cache file for one open of the image: an image reopened after it latched gets its own
   * while the latched one still holds the old.
   */
  private Path cacheFileOf(String id) {
    return cacheDirectory.resolve(id + "-" + UUID.randomUUID() + ".cache");
  }

  @Override
  boolean reopensLatchedImages() {
    return true;
  }

  @Override
  boolean exists(String name) {
    return ids.containsKey(name);
  }

  @Override
  List<String> names() {
    List<String> names = new ArrayList<>(ids.keySet());
    names.sort(null);
    return names;
  }

  @Override
  Image create(
      String name,
      ImageOptions options,
      @Nullable BaseImage base,
      String baseName,
      SpaceBudget spaceBudget)
      throws IOException {
    if (ids.containsKey(name)) {
      throw new FileAlreadyExistsException(name);
    }
    String id = UUID.randomUUID().toString();
    try {
      BucketStorage storage =
          BucketStorage.create(store, prefixOf(id), name, cacheFileOf(id), transfers, settings);
      Image.create(storage, options, base, baseName).close();
      if (!store.putIfAbsent(NAMES + name, ByteBuffer.wrap(id.getBytes(StandardCharsets.UTF_8)))) {
        throw new FileAlreadyExistsException(name);
      }
    } catch (IOException | RuntimeException e) {
      try {
        deleteObjects(id);
      } catch (IOException | RuntimeException cleanup) {
        e.addSuppressed(cleanup);
      }
      throw e;
    }
    ids.put(name, id);
    return open(name, base == null ? BaseResolver.NONE : locator -> base, spaceBudget);
  }

  @Override
  Image open(String name, BaseResolver bases, SpaceBudget spaceBudget) throws IOException {
    String id = idOf(name);
    BucketStorage storage =
        BucketStorage.open(store, prefixOf(id), name, cacheFileOf(id), true, transfers, settings);
    try {
      return Images.open(storage, bases, spaceBudget);
    } catch (IOException | RuntimeException e) {
      storage.close();
      throw e;
    }
  }

  @Override
  void setReadOnly(String name, boolean readOnly) throws IOException {
    String id = idOf(name);
    try (BucketStorage storage =
        BucketStorage.open(store, prefixOf(id), name, cacheFileOf(id), true, transfers, settings)) {
      Image.setReadOnly(storage, readOnly);
    }
  }

  @Override
  void delete(String name) throws IOException {
    String id = ids.get(name);
    if (id == null) {
      return;
    }
    store.delete(NAMES + name);
    ids.remove(name);
    deleteObjects(id);
  }

  private void deleteObjects(String id) throws IOException {
    for (String key : store.list(prefixOf(id))) {
      store.delete(key);
    }
  }

  private String idOf(String name) throws IOException {
    String id = ids.get(name);
    if (id == null) {
      throw new java.io.FileNotFoundException("no image named " + name + " in the bucket");
    }
    return id;
  }
}
