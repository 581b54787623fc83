package dev.fvdisk.testing;

import java.io.BufferedOutputStream;
import java.io.Closeable;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Writes a cpio archive in the "newc" format, the one the kernel unpacks as an initramfs (its
 * documentation calls it the initramfs buffer format). Only what an initramfs of a few files needs:
 * directories and regular files, owned by root, with no timestamps.
 *
 * <p>Each entry is a 110-byte ASCII header (the magic {@code 070701} and thirteen 8-digit hex
 * fields), the NUL-terminated name and the content, name and content each padded to 4 bytes; an
 * entry named {@code TRAILER!!!} ends the archive.
 */
final class NewcArchive implements Closeable {

  private static final int DIRECTORY = 0040000;
  private static final int REGULAR_FILE = 0100000;
  private static final byte[] NO_CONTENT = new byte[0];

  private final OutputStream out;
  private long writtenBytes;
  private int nextInode = 1;

  NewcArchive(Path file) throws IOException {
    this.out = new BufferedOutputStream(Files.newOutputStream(file));
  }

  /** A directory; {@code path} is relative to the archive's root, as {@code "lib/modules"}. */
  void directory(String path) throws IOException {
    entry(path, DIRECTORY | 0755, 2, NO_CONTENT);
  }

  /** A regular file with the given permission bits, as {@code 0755}. */
  void file(String path, int permissions, byte[] content) throws IOException {
    entry(path, REGULAR_FILE | permissions, 1, content);
  }

  @Override
  public void close() throws IOException {
    try (out) {
      entry("TRAILER!!!", 0, 1, NO_CONTENT);
    }
  }

  private void entry(String name, int mode, int linkCount, byte[] content) throws IOException {
    byte[] nameBytes = (name + "\0").getBytes(StandardCharsets.US_ASCII);
    // ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor,
    // namesize, check (0: no checksum).
    long[] fields = {
      nextInode++, mode, 0, 0, linkCount, 0, content.length, 0, 0, 0, 0, nameBytes.length, 0
    };
    StringBuilder header = new StringBuilder("070701");
    for (long field : fields) {
      header.append(String.format("%08X", field));
    }
    write(header.toString().getBytes(StandardCharsets.US_ASCII));
    write(nameBytes);
    padToFourBytes();
    write(content);
    padToFourBytes();
  }

  private void write(byte[] bytes) throws IOException {
    out.write(bytes);
    writtenBytes += bytes.length;
  }

  private void padToFourBytes() throws IOException {
    while (writtenBytes % 4 != 0) {
      out.write(0);
      writtenBytes++;
    }
  }
}
