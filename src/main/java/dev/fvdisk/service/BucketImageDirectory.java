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
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.function.LongSupplier;
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
 * <p><b>Several instances.</b> Given a node (see {@link BucketLeases}), the directory shares the
 * prefix with other instances: each image is served by the instance holding its lease, names are
 * read from the bucket on every look-up rather than once at start, and an image created here is
 * leased to this instance before its name appears. Without one, this is the only instance on the
 * prefix.
 *
 * <p><b>Thread safety.</b> The maps are concurrent; callers serialise lifecycle changes, as for
 * {@link ImageDirectory}.
 */
public final class BucketImageDirectory extends ImageDirectory {

  private static final String NAMES = "names/";

  private final ObjectStore store;
  private final Executor transfers;
  private final BucketStorage.Settings settings;
  private final Path cacheDirectory;
  private final ConcurrentHashMap<String, String> ids = new ConcurrentHashMap<>();
  private final ConcurrentHashMap<String, BucketStorage> openStorages = new ConcurrentHashMap<>();
  private final @Nullable BucketLeases leases;

  /**
   * Reads the names in the bucket.
   *
   * @param root the data directory, already created and resolved to its real path
   * @param transfers runs the page uploads of a force in parallel
   */
  public BucketImageDirectory(
      Path root, ObjectStore store, Executor transfers, BucketStorage.Settings settings)
      throws IOException {
    this(root, store, transfers, settings, null, Duration.ZERO, System::currentTimeMillis);
  }

  /**
   * Reads the names in the bucket, which this instance shares with others when {@code node} is
   * given.
   *
   * @param node this instance, or null for the only one on the prefix
   * @param lease how long a lease lasts unless renewed (renewals come every third of it)
   * @param clock wall-clock milliseconds, for lease expiry
   */
  public BucketImageDirectory(
      Path root,
      ObjectStore store,
      Executor transfers,
      BucketStorage.Settings settings,
      @Nullable String nodeId,
      @Nullable String nodeUrl,
      Duration lease,
      LongSupplier clock)
      throws IOException {
    this(
        root,
        store,
        transfers,
        settings,
        nodeId == null ? null : new BucketLeases.Node(nodeId, nodeUrl == null ? "" : nodeUrl),
        lease,
        clock);
  }

  private BucketImageDirectory(
      Path root,
      ObjectStore store,
      Executor transfers,
      BucketStorage.Settings settings,
      BucketLeases.@Nullable Node node,
      Duration lease,
      LongSupplier clock)
      throws IOException {
    super(root);
    this.store = store;
    this.leases =
        node == null ? null : new BucketLeases(store, node, lease, clock, this::leaseKeyOf);
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
    readNames();
  }

  /** Reads every name in the bucket into the map, dropping the ones that are gone. */
  private void readNames() throws IOException {
    java.util.Set<String> seen = new java.util.HashSet<>();
    for (String key : store.list(NAMES)) {
      String name = key.substring(NAMES.length());
      if (isValidName(name)) {
        seen.add(name);
        if (!ids.containsKey(name)) {
          readName(name);
        }
      }
    }
    ids.keySet().retainAll(seen);
  }

  /** Reads one name from the bucket; false when the bucket has no such name (any more). */
  private boolean readName(String name) throws IOException {
    ByteBuffer id = store.get(NAMES + name);
    if (id == null) {
      ids.remove(name);
      return false;
    }
    ids.put(name, StandardCharsets.UTF_8.decode(id).toString());
    return true;
  }

  private String leaseKeyOf(String name) throws IOException {
    return prefixOf(idOf(name)) + "lease";
  }

  @Override
  ImageLeases leases() {
    return leases == null ? ImageLeases.NONE : leases;
  }

  // ---- figures of the leases, for monitoring; 0 for the only instance on the prefix ----

  /** This instance's node id among several on the prefix; null when it is the only one. */
  public @Nullable String nodeId() {
    return leases == null ? null : leases.self().id();
  }

  /** Image leases this instance holds and has not let run out. */
  public int leasesHeld() {
    return leases == null ? 0 : leases.heldCount();
  }

  /** Leases this instance took that another instance held last. */
  public long leasesTakenOver() {
    return leases == null ? 0 : leases.takenOverCount();
  }

  /** Images this instance gave up because another instance took their lease. */
  public long leasesLost() {
    return leases == null ? 0 : leases.lostCount();
  }

  @Override
  void fence(String name) {
    BucketStorage storage = openStorages.get(name);
    if (storage != null) {
      storage.fence("another instance took the image over");
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
    if (leases == null) {
      return ids.containsKey(name);
    }
    // Another instance may have created or deleted it since.
    try {
      return readName(name);
    } catch (IOException e) {
      throw ImageUnavailableException.storeUnreachable(name, e);
    }
  }

  @Override
  List<String> names() throws IOException {
    if (leases != null) {
      readNames();
    }
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
      if (leases != null) {
        // Leased before the name appears, so no other instance takes a fresh image.
        leases.take(name, prefixOf(id) + "lease");
      }
      Image.create(storage, options, base, baseName).close();
      if (!store.putIfAbsent(NAMES + name, ByteBuffer.wrap(id.getBytes(StandardCharsets.UTF_8)))) {
        throw new FileAlreadyExistsException(name);
      }
    } catch (IOException | RuntimeException e) {
      if (leases != null && !ids.containsKey(name)) {
        leases.forget(name);
      }
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
      Image image = Images.open(storage, bases, spaceBudget);
      openStorages.put(name, storage);
      return image;
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
    openStorages.remove(name);
    if (leases != null) {
      leases.forget(name);
    }
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
