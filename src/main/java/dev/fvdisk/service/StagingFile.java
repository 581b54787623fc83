package dev.fvdisk.service;

import dev.fvdisk.engine.StorageFull;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One staged body (see {@link StagingArea}): appended to from the start, read back, and deleted on
 * {@link #close}. Never forced to disk, as it is gone when its request ends, also after a crash
 * (the next start empties the staging area). Belongs to one request; not thread-safe.
 */
public final class StagingFile implements AutoCloseable {

  private static final Logger log = LoggerFactory.getLogger(StagingFile.class);

  private final Path path;
  private final FileChannel channel;
  private final EngineErrors errors;
  private long sizeBytes;

  StagingFile(Path path, FileChannel channel, EngineErrors errors) {
    this.path = path;
    this.channel = channel;
    this.errors = errors;
  }

  /**
   * Writes the remaining bytes of {@code src} after what the file holds, consuming them.
   *
   * @throws InsufficientStorageException when the file system is full
   * @throws StorageIoException when writing fails otherwise
   */
  public void append(ByteBuffer src) {
    try {
      while (src.hasRemaining()) {
        sizeBytes += channel.write(src, sizeBytes);
      }
    } catch (IOException e) {
      String diskFull = StorageFull.reasonOf(e);
      if (diskFull != null) {
        throw InsufficientStorageException.stagingFull(diskFull);
      }
      throw failed("written", e);
    }
  }

  /**
   * Reads {@code dst.remaining()} bytes at {@code offsetBytes} into {@code dst}, advancing its
   * position.
   *
   * @throws StorageIoException when reading fails, or the file ends first
   */
  public void read(long offsetBytes, ByteBuffer dst) {
    try {
      long position = offsetBytes;
      while (dst.hasRemaining()) {
        int n = channel.read(dst, position);
        if (n < 0) {
          throw new EOFException("the staging file ends at byte " + position);
        }
        position += n;
      }
    } catch (IOException e) {
      throw failed("read", e);
    }
  }

  /** Closes and deletes the file; never throws, so it cannot hide the request's own failure. */
  @Override
  public void close() {
    try {
      channel.close();
    } catch (IOException e) {
      log.warn("Closing staging file {} failed: {}", path, e.toString());
    }
    delete(path);
  }

  /** Deletes a staging file; a failure is logged (without a stack trace) and returns false. */
  static boolean delete(Path file) {
    try {
      return Files.deleteIfExists(file);
    } catch (IOException e) {
      log.warn("Staging file {} cannot be deleted: {}", file, e.toString());
      return false;
    }
  }

  private StorageIoException failed(String what, IOException e) {
    return errors.directoryFailed(
        "a staging file cannot be " + what + ": " + errors.withoutDirectory(e), e);
  }
}
