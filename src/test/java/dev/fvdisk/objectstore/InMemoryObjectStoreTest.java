package dev.fvdisk.objectstore;

class InMemoryObjectStoreTest extends ObjectStoreContract {

  @Override
  ObjectStore store() {
    return new InMemoryObjectStore();
  }
}
