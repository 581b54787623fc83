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
 *
 * <p>Heap buffers go through the channel in pieces of at most {@value #HEAP_SLICE_BYTES} bytes. The
 * channel copies a heap buffer through a temporary direct buffer as large as the part it is given
 * and keeps that buffer cached in the calling thread until the thread ends; a 4 MiB chunk table
 * read or written whole would leave 4 MiB of native memory behind in every thread that ever opened
 * or closed a 1 TiB image. A single positional write is not atomic either way, so the pieces change
 * nothing a crash can leave behind.
 */
public final class FileStorage implements Storage {

  /** Largest piece of a heap buffer handed to the channel at once. */
  static final int HEAP_SLICE_BYTES = 1 << 20;

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
    int limit = dst.limit();
    try {
      while (dst.hasRemaining()) {
        if (!dst.isDirect()) {
          dst.limit(dst.position() + Math.min(limit - dst.position(), HEAP_SLICE_BYTES));
        }
        int n = channel.read(dst, position);
        if (n < 0) {
          throw new EOFException(
              path
                  + ": read of "
                  + (limit - dst.position())
                  + " bytes at offset "
                  + position
                  + " hits end");
        }
        position += n;
        dst.limit(limit);
      }
    } finally {
      dst.limit(limit);
    }
  }

  @Override
  public void write(ByteBuffer src, long positionBytes) throws IOException {
    long position = positionBytes;
    int limit = src.limit();
    try {
      while (src.hasRemaining()) {
        if (!src.isDirect()) {
          src.limit(src.position() + Math.min(limit - src.position(), HEAP_SLICE_BYTES));
        }
        position += channel.write(src, position);
        src.limit(limit);
      }
    } finally {
      src.limit(limit);
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
