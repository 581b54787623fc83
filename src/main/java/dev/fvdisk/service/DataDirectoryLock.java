package dev.fvdisk.service;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * The one-writer guard of a data directory: an operating-system lock on {@code .fvdisk.lock} in it,
 * held for as long as the service runs. A second service pointed at the same directory is refused
 * at start, because two processes writing the same image files (each with its own journal position,
 * allocator and caches) would corrupt them.
 *
 * <p>The lock is the kernel's ({@code fcntl} on Linux): it goes away with the process that held it,
 * so a service killed with SIGKILL leaves no stale lock behind. The file also holds the holder's
 * process id, for the refusal's message only.
 */
public final class DataDirectoryLock implements AutoCloseable {

  /** The lock file's name; it does not end in {@code .fvd}, so it is never taken for an image. */
  public static final String FILE_NAME = ".fvdisk.lock";

  private final FileChannel channel;
  private final FileLock lock;

  private DataDirectoryLock(FileChannel channel, FileLock lock) {
    this.channel = channel;
    this.lock = lock;
  }

  /**
   * Takes the lock of {@code dataDir}.
   *
   * @throws DataDirectoryInUseException when another process (or another service in this one) holds
   *     it
   */
  public static DataDirectoryLock acquire(Path dataDir) throws IOException {
    Path file = dataDir.resolve(FILE_NAME);
    FileChannel channel =
        FileChannel.open(
            file, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
    FileLock lock;
    try {
      lock = channel.tryLock();
    } catch (OverlappingFileLockException e) {
      lock = null;
    } catch (IOException | RuntimeException e) {
      channel.close();
      throw e;
    }
    if (lock == null) {
      String holder = holder(channel);
      channel.close();
      throw new DataDirectoryInUseException(dataDir, holder);
    }
    channel.truncate(0);
    channel.write(
        ByteBuffer.wrap((ProcessHandle.current().pid() + "\n").getBytes(StandardCharsets.US_ASCII)),
        0);
    return new DataDirectoryLock(channel, lock);
  }

  private static String holder(FileChannel channel) {
    try {
      ByteBuffer content = ByteBuffer.allocate(32);
      channel.read(content, 0);
      return new String(content.array(), 0, content.position(), StandardCharsets.US_ASCII).trim();
    } catch (IOException e) {
      return "";
    }
  }

  /** Gives the directory up; a later service may take it. */
  @Override
  public void close() throws IOException {
    try {
      lock.release();
    } finally {
      channel.close();
    }
  }
}
