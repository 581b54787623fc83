package dev.fvdisk.engine;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A test model of a virtual disk that knows, for every 512-byte sector, which contents a crash may
 * leave there.
 *
 * <p>Each write appends a new version to every sector it touches (the sector's whole content after
 * the write, so unaligned writes are covered). A flush that returns moves the sector's floor up to
 * the version it covered. After a crash a sector may hold its floor version or any later one: the
 * acknowledged write must be there, and writes after it may or may not have landed. A write that
 * failed may have landed or not, so a later flush cannot push the floor past the version before it.
 *
 * <p>Not thread-safe; concurrent tests keep one model per thread over disjoint sectors.
 */
final class SectorHistory {

  static final int SECTOR_BYTES = 512;

  private final byte[] latest;
  private final List<List<byte[]>> versions;
  private final int[] floor;
  private final int[] failedVersion;

  SectorHistory(long capacityBytes) {
    this(new byte[Math.toIntExact(capacityBytes)]);
  }

  /** A disk that holds {@code initial} before its first write (a clone reading its base). */
  SectorHistory(byte[] initial) {
    long capacityBytes = initial.length;
    if (capacityBytes % SECTOR_BYTES != 0) {
      throw new IllegalArgumentException("capacity must be whole sectors: " + capacityBytes);
    }
    int sectors = (int) (capacityBytes / SECTOR_BYTES);
    latest = initial.clone();
    versions = new ArrayList<>(sectors);
    for (int s = 0; s < sectors; s++) {
      List<byte[]> list = new ArrayList<>(2);
      list.add(Arrays.copyOfRange(initial, s * SECTOR_BYTES, (s + 1) * SECTOR_BYTES));
      versions.add(list);
    }
    floor = new int[sectors];
    failedVersion = new int[sectors];
    Arrays.fill(failedVersion, -1);
  }

  int sectorCount() {
    return floor.length;
  }

  /** What the disk holds if every write issued so far landed. */
  byte[] latest(long offsetBytes, int lengthBytes) {
    return Arrays.copyOfRange(latest, (int) offsetBytes, (int) offsetBytes + lengthBytes);
  }

  /** Whether no write, issued or failed, ever touched the range: it can only read as zeros. */
  boolean neverWritten(long offsetBytes, long lengthBytes) {
    int first = (int) (offsetBytes / SECTOR_BYTES);
    int end = (int) ((offsetBytes + lengthBytes + SECTOR_BYTES - 1) / SECTOR_BYTES);
    for (int s = first; s < end; s++) {
      if (versions.get(s).size() > 1) {
        return false;
      }
    }
    return true;
  }

  /** Records a write before it is issued, so a crash inside it is already allowed for. */
  void recordWrite(long offsetBytes, byte[] data) {
    System.arraycopy(data, 0, latest, (int) offsetBytes, data.length);
    int first = (int) (offsetBytes / SECTOR_BYTES);
    int end = (int) ((offsetBytes + data.length + SECTOR_BYTES - 1) / SECTOR_BYTES);
    for (int s = first; s < end; s++) {
      versions.get(s).add(sectorOf(latest, s));
    }
  }

  /** The last recorded write failed: each of its sectors holds the new or the previous version. */
  void markLastWriteFailed(long offsetBytes, int lengthBytes) {
    int first = (int) (offsetBytes / SECTOR_BYTES);
    int end = (int) ((offsetBytes + lengthBytes + SECTOR_BYTES - 1) / SECTOR_BYTES);
    for (int s = first; s < end; s++) {
      failedVersion[s] = versions.get(s).size() - 1;
    }
  }

  /** The newest version of every sector, taken when a flush starts. */
  int[] snapshot() {
    int[] snapshot = new int[floor.length];
    for (int s = 0; s < snapshot.length; s++) {
      snapshot[s] = versions.get(s).size() - 1;
    }
    return snapshot;
  }

  /** A flush that started at {@code snapshot} returned: those versions are durable. */
  void acknowledge(int[] snapshot) {
    for (int s = 0; s < floor.length; s++) {
      int durable = snapshot[s];
      if (failedVersion[s] >= 0 && durable >= failedVersion[s]) {
        durable = failedVersion[s] - 1;
      }
      floor[s] = Math.max(floor[s], durable);
    }
  }

  /**
   * After a restart, the sectors read back as {@code observed} (already checked): that content is
   * now the only one, and durable, because recovery forced it.
   */
  void resyncDurable(long offsetBytes, byte[] observed) {
    int first = (int) (offsetBytes / SECTOR_BYTES);
    for (int i = 0; i < observed.length / SECTOR_BYTES; i++) {
      int s = first + i;
      byte[] content = Arrays.copyOfRange(observed, i * SECTOR_BYTES, (i + 1) * SECTOR_BYTES);
      List<byte[]> list = versions.get(s);
      if (!Arrays.equals(list.get(list.size() - 1), content)) {
        list.add(content);
      }
      System.arraycopy(content, 0, latest, s * SECTOR_BYTES, SECTOR_BYTES);
      floor[s] = list.size() - 1;
      failedVersion[s] = -1;
    }
  }

  /**
   * Checks sectors read back after a crash.
   *
   * @param offsetBytes sector-aligned start of {@code observed}
   * @return null when every sector holds an allowed version, else a description of the first sector
   *     that does not
   */
  String violation(long offsetBytes, byte[] observed) {
    int first = (int) (offsetBytes / SECTOR_BYTES);
    for (int i = 0; i < observed.length / SECTOR_BYTES; i++) {
      int s = first + i;
      List<byte[]> list = versions.get(s);
      byte[] content = Arrays.copyOfRange(observed, i * SECTOR_BYTES, (i + 1) * SECTOR_BYTES);
      boolean allowed = false;
      for (int v = floor[s]; v < list.size() && !allowed; v++) {
        allowed = Arrays.equals(list.get(v), content);
      }
      if (!allowed) {
        int older = -1;
        for (int v = 0; v < floor[s]; v++) {
          if (Arrays.equals(list.get(v), content)) {
            older = v;
          }
        }
        return "sector "
            + s
            + " (virtual offset "
            + (long) s * SECTOR_BYTES
            + ") reads content that is none of versions "
            + floor[s]
            + ".."
            + (list.size() - 1)
            + " (version "
            + floor[s]
            + " was acknowledged as durable)"
            + (older >= 0 ? "; it is the older, superseded version " + older : "")
            + (isZero(content) ? "; it reads as zeros" : "");
      }
    }
    return null;
  }

  private static byte[] sectorOf(byte[] bytes, int sector) {
    return Arrays.copyOfRange(bytes, sector * SECTOR_BYTES, (sector + 1) * SECTOR_BYTES);
  }

  private static boolean isZero(byte[] content) {
    for (byte b : content) {
      if (b != 0) {
        return false;
      }
    }
    return true;
  }
}
