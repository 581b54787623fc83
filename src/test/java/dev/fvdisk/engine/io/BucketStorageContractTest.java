package dev.fvdisk.engine.io;

import dev.fvdisk.objectstore.BucketStorage;
import dev.fvdisk.objectstore.InMemoryObjectStore;
import java.io.IOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.io.TempDir;

/**
 * Runs the storage contract against storage in a bucket (in memory here), with small pages so that
 * the contract's writes cross many page boundaries, and a close and reopen that starts from the
 * bucket alone with an empty cache.
 */
class BucketStorageContractTest extends StorageContractTest {

  private static final ExecutorService UPLOADS = Executors.newFixedThreadPool(4);
  private static final BucketStorage.Settings SMALL_PAGES =
      new BucketStorage.Settings(4096, 16384, 8, 1 << 20);

  @TempDir Path cacheDir;
  private final InMemoryObjectStore store = new InMemoryObjectStore();
  private final Map<Storage, String> prefixes = new HashMap<>();
  private int count;

  @AfterAll
  static void stopUploads() {
    UPLOADS.shutdownNow();
  }

  @Override
  protected Storage createEmpty() throws IOException {
    String prefix = "images/" + count++ + "/";
    Storage s =
        BucketStorage.create(
            store, prefix, cacheDir.resolve(count + ".cache"), UPLOADS, SMALL_PAGES);
    prefixes.put(s, prefix);
    return s;
  }

  @Override
  protected Storage closeAndReopen(Storage storage) throws IOException {
    String prefix = prefixes.get(storage);
    storage.close();
    Storage s =
        BucketStorage.open(
            store, prefix, cacheDir.resolve(count++ + ".cache"), true, UPLOADS, SMALL_PAGES);
    prefixes.put(s, prefix);
    return s;
  }
}
