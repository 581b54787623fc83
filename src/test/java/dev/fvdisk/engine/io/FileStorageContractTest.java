package dev.fvdisk.engine.io;

import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.io.TempDir;

/** Runs the storage contract against a real file in a temporary directory. */
class FileStorageContractTest extends StorageContractTest {

  @TempDir Path directory;
  private int fileCount;

  @Override
  protected Storage createEmpty() throws IOException {
    return FileStorage.createNew(directory.resolve("storage-" + fileCount++ + ".img"));
  }

  @Override
  protected Storage closeAndReopen(Storage storage) throws IOException {
    storage.close();
    return FileStorage.open(Path.of(storage.description()), true);
  }
}
