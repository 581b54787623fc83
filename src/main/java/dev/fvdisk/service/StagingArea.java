package dev.fvdisk.service;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Where a write's body waits while it is checked, when it is too large for the request's buffer: a
 * {@link StagingFile} in the {@code .staging} directory of the data directory. The directory is
 * made when first needed and emptied when the service starts, which removes what a crash in the
 * middle of an upload left. Its name starts with a dot, so it is never taken for an image (see
 * {@link ImageDirectory#NAME}).
 *
 * <p>Staged bodies take space on the data directory's file system, so each is checked against the
 * free space writes leave alone ({@link SpacePolicy#checkStaging}) before it is made. The files
 * live on that file system rather than in {@code /tmp} because it is the one the operator sized for
 * data, and the one the free-space threshold watches.
 *
 * <p>Safe to share between threads; each file belongs to one request.
 */
public final class StagingArea {

  static final String DIRECTORY_NAME = ".staging";

  private static final Logger log = LoggerFactory.getLogger(StagingArea.class);

  private final Path directory;
  private final SpacePolicy space;
  private final EngineErrors errors;

  StagingArea(Path directory, SpacePolicy space, EngineErrors errors) {
    this.directory = directory;
    this.space = space;
    this.errors = errors;
  }

  /**
   * A new, empty staging file for a body of {@code lengthBytes}; the caller closes it, which
   * deletes it.
   *
   * @throws InsufficientStorageException when the body would take the file system below the free
   *     space writes leave alone
   * @throws StorageIoException when the file cannot be made
   */
  public StagingFile create(long lengthBytes) {
    space.checkStaging(lengthBytes);
    Path file = null;
    try {
      Files.createDirectories(directory);
      file = Files.createTempFile(directory, "body-", ".part");
      return new StagingFile(
          file, FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE), errors);
    } catch (IOException e) {
      if (file != null) {
        StagingFile.delete(file);
      }
      throw errors.directoryFailed(
          "a staging file cannot be made: " + errors.withoutDirectory(e), e);
    }
  }

  /**
   * Deletes every file in the directory; at start-up, before any request, while the data
   * directory's lock keeps other services out. A directory reached through a link is left alone.
   */
  void clear() {
    if (!Files.isDirectory(directory, LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    int deleted = 0;
    try (DirectoryStream<Path> files = Files.newDirectoryStream(directory)) {
      for (Path file : files) {
        if (StagingFile.delete(file)) {
          deleted++;
        }
      }
    } catch (IOException e) {
      log.warn("The staging directory {} cannot be listed: {}", directory, e.toString());
    }
    if (deleted > 0) {
      log.info("Deleted {} staged bodies left by an earlier run from {}", deleted, directory);
    }
  }
}
