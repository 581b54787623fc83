package dev.fvdisk.bench;

import dev.fvdisk.engine.Image;
import dev.fvdisk.engine.ImageOptions;
import dev.fvdisk.engine.Images;
import dev.fvdisk.engine.io.FileStorage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

/**
 * The fvdisk engine in process, on images with the default layout (1 MiB chunks). Reads and writes
 * into allocated chunks use one image whose every chunk was written at preparation; the fresh
 * pattern creates a new image per repetition, and the clone pattern a new clone of that image,
 * marked read-only for the purpose.
 */
final class EngineContender implements Contender {

  private final Path directory;
  private final long diskBytes;
  private final Path filledPath;
  private Image filled;
  private Image base;
  private int scratchCounter;

  EngineContender(Path directory, long diskBytes) {
    this.directory = directory;
    this.diskBytes = diskBytes;
    this.filledPath = directory.resolve("fvdisk-filled.fvd");
  }

  @Override
  public String name() {
    return "fvdisk";
  }

  @Override
  public String imageFor(Scenario scenario) {
    return switch (scenario.pattern()) {
      case SEQ_WRITE_1M_FRESH -> "new image per repetition, 1 MiB chunks";
      case CLONE_WRITE_4K -> "new clone per repetition, 64 KiB blocks, 1 MiB chunks";
      default -> "every 1 MiB chunk allocated and written";
    };
  }

  @Override
  public boolean supports(Scenario scenario) {
    return true;
  }

  @Override
  public void prepare() throws IOException {
    filled = Images.create(filledPath, ImageOptions.builder(diskBytes).build());
  }

  /** Writing the whole disk allocates every chunk. */
  @Override
  public boolean fill(long offsetBytes, ByteBuffer data) throws IOException {
    filled.write(offsetBytes, data);
    return true;
  }

  @Override
  public void finishFill() throws IOException {
    filled.flush();
  }

  static ByteBuffer randomDirectBuffer(int bytes, long seed) {
    byte[] content = new byte[bytes];
    new Random(seed).nextBytes(content);
    return Workload.alignedDirectBuffer(bytes).put(content).clear();
  }

  @Override
  public RunResult runOnce(Scenario scenario) throws Exception {
    Offsets offsets = Offsets.of(scenario.pattern(), diskBytes);
    switch (scenario.pattern()) {
      case SEQ_WRITE_1M_FRESH -> {
        Path path = scratchPath("fresh");
        try (Image image = Images.create(path, ImageOptions.builder(diskBytes).build())) {
          return Workload.run(new EngineTarget(image), scenario, offsets);
        } finally {
          Files.deleteIfExists(path);
        }
      }
      case CLONE_WRITE_4K -> {
        Image b = base();
        Path path = scratchPath("clone");
        ImageOptions options =
            ImageOptions.builder(diskBytes).blockSizeBytes(Pattern.CLONE_BLOCK_BYTES).build();
        try (Image clone = Image.create(FileStorage.createNew(path), options, b, "base")) {
          return Workload.run(new EngineTarget(clone), scenario, offsets);
        } finally {
          Files.deleteIfExists(path);
        }
      }
      default -> {
        Image image = filled();
        // Earlier repetitions' writes are forced now, so their writeback is not billed to this one.
        image.flush();
        return Workload.run(new EngineTarget(image), scenario, offsets);
      }
    }
  }

  private Path scratchPath(String kind) {
    return directory.resolve("fvdisk-" + kind + "-" + scratchCounter++ + ".fvd");
  }

  /** The filled image open for writing, reopening it if it was serving as a base. */
  private Image filled() throws IOException {
    if (filled == null) {
      base.close();
      base = null;
      Images.setReadOnly(filledPath, false);
      filled = Images.open(filledPath, true);
    }
    return filled;
  }

  /** The filled image marked read-only and open for reading, as clones require of a base. */
  private Image base() throws IOException {
    if (base == null) {
      filled.close();
      filled = null;
      Images.setReadOnly(filledPath, true);
      base = Images.open(filledPath, false);
    }
    return base;
  }

  @Override
  public void close() throws IOException {
    try {
      if (filled != null) {
        filled.close();
      }
      if (base != null) {
        base.close();
      }
    } finally {
      Files.deleteIfExists(filledPath);
    }
  }

  /** The engine's public API as a {@link BlockTarget}. */
  private record EngineTarget(Image image) implements BlockTarget {
    @Override
    public void write(long offsetBytes, ByteBuffer src) throws IOException {
      image.write(offsetBytes, src);
    }

    @Override
    public void read(long offsetBytes, ByteBuffer dst) throws IOException {
      image.read(offsetBytes, dst);
    }

    @Override
    public void flush() throws IOException {
      image.flush();
    }

    @Override
    public void close() {}
  }
}
