package dev.fvdisk.monitoring;

import dev.fvdisk.engine.Image;
import dev.fvdisk.engine.ImageOptions;
import dev.fvdisk.engine.io.CrashingStorage;
import dev.fvdisk.engine.io.MemoryStorage;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Makes an image file that leaks chunks, through the engine's fault-injection seam: many chunks are
 * written, and the force that should make their journal records durable fails with only some of the
 * journal's sectors on disk. Recovery then maps the chunks whose records survived, and the slots
 * below them whose records were lost are leaked. Which sectors survive follows a seed, so seeds are
 * tried in order until one leaves a leak; the outcome is the same on every run.
 */
final class LeakyImages {

  static final int CHUNK_BYTES = 64 << 10;
  static final long SIZE_BYTES = 8L << 20;

  private LeakyImages() {}

  /** Writes a leaking image to {@code file} and returns how many chunks it leaks. */
  static long write(Path file) throws IOException {
    for (long seed = 1; seed <= 100; seed++) {
      CrashingStorage crashing = CrashingStorage.wrap(new MemoryStorage("leaky"));
      Image image =
          Image.create(
              crashing,
              ImageOptions.builder(SIZE_BYTES)
                  .chunkSizeBytes(CHUNK_BYTES)
                  .maxSizeBytes(SIZE_BYTES)
                  .journalSizeBytes(256 << 10)
                  .growthUnitBytes(2L * CHUNK_BYTES)
                  .build());
      for (long chunk = 0; chunk < SIZE_BYTES / CHUNK_BYTES; chunk++) {
        image.write(chunk * CHUNK_BYTES, ByteBuffer.wrap(new byte[] {9, 9, 9}));
      }
      // The first force of the round makes the data durable; the second, after the journal
      // append, fails: some of the appended sectors reached the disk, the rest did not.
      crashing.arm(CrashingStorage.Mode.FAIL_FORCE, crashing.forceCount() + 2, seed);
      try {
        image.flush();
      } catch (IOException expected) {
        // The image is latched now; only what survived matters.
      }
      MemoryStorage survivor = crashing.survivingStorage("leaky");
      long leaked;
      try (Image reopened = Image.open(survivor.reopen(), false)) {
        leaked = reopened.stats().leakedChunks();
      }
      if (leaked > 0) {
        copy(survivor.reopen(), file);
        return leaked;
      }
    }
    throw new IllegalStateException("no seed left a leaked chunk");
  }

  private static void copy(MemoryStorage storage, Path file) throws IOException {
    long size = storage.sizeBytes();
    ByteBuffer buffer = ByteBuffer.allocate(1 << 20);
    try (OutputStream out = Files.newOutputStream(file)) {
      for (long position = 0; position < size; ) {
        buffer.clear().limit((int) Math.min(buffer.capacity(), size - position));
        storage.read(buffer, position);
        out.write(buffer.array(), 0, buffer.limit());
        position += buffer.limit();
      }
    }
  }
}
