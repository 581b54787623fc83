package dev.fvdisk.engine.io;

import java.io.IOException;

/** Runs the storage contract against in-memory storage. */
class MemoryStorageContractTest extends StorageContractTest {

  private int storageCount;

  @Override
  protected Storage createEmpty() {
    return new MemoryStorage("memory-" + storageCount++);
  }

  @Override
  protected Storage closeAndReopen(Storage storage) throws IOException {
    storage.close();
    return ((MemoryStorage) storage).reopen();
  }
}
