package dev.fvdisk.engine.io;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * {@link Storage} on a regular file through a {@link FileChannel}.
 *
 * <p>Positional channel I/O is safe to use from many threads at once. Growing the file with {@link
 * #resize} leaves a hole, so storage reserved ahead of use costs no disk blocks on file systems
 * with sparse files. {@link #force()} calls {@code fdatasync}-like {@code force(false)} after plain
 * writes and the stronger {@code force(true)} after a resize, because a changed length is file
 * metadata that must survive a crash too.
 */
public final class FileStorage implements Storage {

  private final Path path;
  private final FileChannel channel;
  private volatile boolean resizedSinceForce;

  private FileStorage(Path path, FileChannel channel) {
    this.path = path;
    this.channel = channel;
  }

  /** Opens an existing file, for reading only or for reading and writing. */
  public static FileStorage open(Path path, boolean writable) throws IOException {
    FileChannel channel =
        writable
            ? FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE)
            : FileChannel.open(path, StandardOpenOption.READ);
    return new FileStorage(path, channel);
  }

  /** Creates a new file, failing if one exists already. */
  public static FileStorage createNew(Path path) throws IOException {
    FileChannel channel =
        FileChannel.open(
            path, StandardOpenOption.READ, StandardOpenOption.WRITE, StandardOpenOption.CREATE_NEW);
    return new FileStorage(path, channel);
  }

  @Override
  public void read(ByteBuffer dst, long positionBytes) throws IOException {
    long position = positionBytes;
    while (dst.hasRemaining()) {
      int n = channel.read(dst, position);
      if (n < 0) {
        throw new EOFException(
            path + ": read of " + dst.remaining() + " bytes at offset " + position + " hits end");
      }
      position += n;
    }
  }

  @Override
  public void write(ByteBuffer src, long positionBytes) throws IOException {
    long position = positionBytes;
    while (src.hasRemaining()) {
      position += channel.write(src, position);
    }
  }

  @Override
  public void force() throws IOException {
    boolean metadata = resizedSinceForce;
    resizedSinceForce = false;
    channel.force(metadata);
  }

  @Override
  public long sizeBytes() throws IOException {
    return channel.size();
  }

  @Override
  public void resize(long sizeBytes) throws IOException {
    long current = channel.size();
    if (sizeBytes < current) {
      channel.truncate(sizeBytes);
    } else if (sizeBytes > current) {
      // Writing the last byte extends the file and leaves a hole before it.
      channel.write(ByteBuffer.wrap(new byte[1]), sizeBytes - 1);
    }
    resizedSinceForce = true;
  }

  @Override
  public String description() {
    return path.toString();
  }

  @Override
  public void close() throws IOException {
    channel.close();
  }
}
