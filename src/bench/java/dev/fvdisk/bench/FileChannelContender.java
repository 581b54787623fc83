package dev.fvdisk.bench;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * The physical limit: positional {@link FileChannel} I/O on a plain file that was written in full
 * at preparation, so no write allocates file system blocks. Durable mode forces with {@code
 * force(false)} (fdatasync) after each write. Fresh and clone patterns write into the same
 * preallocated file: the limit an image format can approach, not an equivalent of allocation.
 */
final class FileChannelContender implements Contender {

  private final Path path;
  private final long diskBytes;
  private FileChannel channel;

  FileChannelContender(Path directory, long diskBytes) {
    this.path = directory.resolve("filechannel.raw");
    this.diskBytes = diskBytes;
  }

  @Override
  public String name() {
    return "FileChannel";
  }

  @Override
  public String imageFor(Scenario scenario) {
    return "plain file, written in full";
  }

  @Override
  public boolean supports(Scenario scenario) {
    return true;
  }

  @Override
  public void prepare() throws IOException {
    channel =
        FileChannel.open(
            path, StandardOpenOption.CREATE_NEW, StandardOpenOption.READ, StandardOpenOption.WRITE);
  }

  @Override
  public boolean fill(long offsetBytes, ByteBuffer data) throws IOException {
    writeFully(channel, data, offsetBytes);
    return true;
  }

  @Override
  public void finishFill() throws IOException {
    channel.force(true);
  }

  @Override
  public RunResult runOnce(Scenario scenario) throws Exception {
    channel.force(true);
    return Workload.run(
        new ChannelTarget(channel), scenario, Offsets.of(scenario.pattern(), diskBytes));
  }

  static void writeFully(FileChannel channel, ByteBuffer src, long positionBytes)
      throws IOException {
    long position = positionBytes;
    while (src.hasRemaining()) {
      position += channel.write(src, position);
    }
  }

  @Override
  public void close() throws IOException {
    try {
      if (channel != null) {
        channel.close();
      }
    } finally {
      Files.deleteIfExists(path);
    }
  }

  private record ChannelTarget(FileChannel channel) implements BlockTarget {
    @Override
    public void write(long offsetBytes, ByteBuffer src) throws IOException {
      writeFully(channel, src, offsetBytes);
    }

    @Override
    public void read(long offsetBytes, ByteBuffer dst) throws IOException {
      long position = offsetBytes;
      while (dst.hasRemaining()) {
        int n = channel.read(dst, position);
        if (n < 0) {
          throw new EOFException("read past the end at " + position);
        }
        position += n;
      }
    }

    @Override
    public void flush() throws IOException {
      channel.force(false);
    }

    @Override
    public void close() {}
  }
}
