package dev.fvdisk.engine;

import dev.fvdisk.testing.SectorOracle;
import dev.fvdisk.testing.SectorStamp;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.function.LongUnaryOperator;

/**
 * What every sector of a crash-tested virtual disk may hold, and the check of an image against it.
 *
 * <p>The model remembers, per 512-byte sector, which write's {@link SectorStamp} was read back
 * there at the last verification, or zeros, or a clone's base content ({@link SectorStamp#BASE}).
 * Before the first run every sector holds its initial content: zeros for a new image; for a clone,
 * its base's content inside the base's range and zeros past it. After a run that was killed, a
 * sector may hold:
 *
 * <ul>
 *   <li>the stamp of any write of the run that covers it, unless a durable write covering it
 *       started after that write had returned: the durable write then overwrote it for good. Writes
 *       that overlapped in time have no order, so each of them may win; a write still running at
 *       the kill may have landed at any moment;
 *   <li>its old content, only if no durable write of the run covers it.
 * </ul>
 *
 * Anything else is a failure: a lost durable write when a durable write covers the sector, else
 * foreign content (garbage, zeros where data was, data from another sector, or a stale write).
 * Sectors no write ever touched must keep their initial content, which the same rule enforces; the
 * model counts them separately, because for a clone they are the sectors that must still show the
 * base.
 *
 * <p>Not thread-safe.
 */
final class DiskModel {

  private static final int READ_BYTES = 1 << 20;
  private static final int MAX_REPORTED = 10;

  private final long sectorCount;
  private final long[] content;
  private final BitSet everWritten;

  /** A model of a new image: every sector reads as zeros. */
  DiskModel(long sizeBytes) {
    this(sizeBytes, sector -> SectorStamp.ZERO);
  }

  /**
   * A model whose sector {@code s} holds {@code initialContent.applyAsLong(s)} before the first
   * run: {@link SectorStamp#ZERO} or {@link SectorStamp#BASE}.
   */
  DiskModel(long sizeBytes, LongUnaryOperator initialContent) {
    this.sectorCount = sizeBytes / SectorStamp.SECTOR_BYTES;
    this.content = new long[Math.toIntExact(sectorCount)];
    this.everWritten = new BitSet(content.length);
    for (int s = 0; s < content.length; s++) {
      content[s] = initialContent.applyAsLong(s);
    }
  }

  /** What sector {@code s} held at the last verification, or its initial content before one. */
  long contentAt(long sector) {
    return content[Math.toIntExact(sector)];
  }

  /**
   * What a verification found.
   *
   * @param durableWrites durable writes of the run
   * @param durableWritesVerified durable writes whose every sector holds an allowed content
   * @param durableSectorsVerified sectors under at least one durable write that hold an allowed
   *     content
   * @param durableSectorsLost sectors under a durable write that hold something not allowed
   * @param foreignSectors other sectors that hold something not allowed
   * @param untouchedSectorsVerified sectors no write has ever covered that hold their initial
   *     content
   * @param baseSectorsVerified sectors that hold an allowed base stamp
   * @param failures descriptions of the first few bad sectors
   */
  record Verdict(
      long durableWrites,
      long durableWritesVerified,
      long durableSectorsVerified,
      long durableSectorsLost,
      long foreignSectors,
      long untouchedSectorsVerified,
      long baseSectorsVerified,
      List<String> failures) {

    boolean ok() {
      return durableSectorsLost == 0 && foreignSectors == 0;
    }
  }

  /**
   * Reads the whole virtual disk of {@code image} and checks every sector against the model
   * extended by {@code writes}; then takes what was read as the new old content.
   */
  Verdict verify(Image image, List<CrashLog.Write> writes) throws IOException {
    if (image.sizeBytes() != sectorCount * SectorStamp.SECTOR_BYTES) {
      throw new IllegalStateException(
          "image has " + image.sizeBytes() + " bytes, model " + sectorCount * 512);
    }
    SectorOracle oracle = SectorOracle.of(content, writes, CrashLog.Write::durable);
    long durableWrites = 0;
    for (CrashLog.Write w : writes) {
      everWritten.set((int) w.firstSector(), (int) w.endSector());
      if (w.durable()) {
        durableWrites++;
      }
    }

    BitSet bad = new BitSet(content.length);
    long durableVerified = 0;
    long lost = 0;
    long foreign = 0;
    long untouched = 0;
    long base = 0;
    List<String> failures = new ArrayList<>();
    long[] observed = new long[content.length];
    ByteBuffer buf = ByteBuffer.allocateDirect(READ_BYTES);
    int sectorsPerRead = READ_BYTES / SectorStamp.SECTOR_BYTES;
    for (long first = 0; first < sectorCount; first += sectorsPerRead) {
      int n = (int) Math.min(sectorsPerRead, sectorCount - first);
      buf.clear().limit(n * SectorStamp.SECTOR_BYTES);
      image.read(first * SectorStamp.SECTOR_BYTES, buf);
      for (int k = 0; k < n; k++) {
        int s = (int) (first + k);
        long found =
            SectorStamp.identify(
                buf, k * SectorStamp.SECTOR_BYTES, s, SectorStamp.IMAGE_TAG, SectorStamp.BASE_TAG);
        observed[s] = found;
        SectorOracle.Judgement judgement = oracle.judge(s, found);
        if (judgement == SectorOracle.Judgement.ALLOWED) {
          if (oracle.underDurableWrite(s)) {
            durableVerified++;
          }
          if (!everWritten.get(s)) {
            untouched++;
          }
          if (found == SectorStamp.BASE) {
            base++;
          }
          continue;
        }
        bad.set(s);
        if (judgement == SectorOracle.Judgement.LOST) {
          lost++;
        } else {
          foreign++;
        }
        if (failures.size() < MAX_REPORTED) {
          failures.add(describe(s, found, writes, oracle.latestDurableStart(s)));
        }
      }
    }
    long durableWritesVerified = 0;
    for (CrashLog.Write w : writes) {
      if (w.durable()) {
        int next = bad.nextSetBit((int) w.firstSector());
        if (next < 0 || next >= w.endSector()) {
          durableWritesVerified++;
        }
      }
    }
    System.arraycopy(observed, 0, content, 0, content.length);
    return new Verdict(
        durableWrites,
        durableWritesVerified,
        durableVerified,
        lost,
        foreign,
        untouched,
        base,
        List.copyOf(failures));
  }

  private String describe(
      long sector, long found, List<CrashLog.Write> writes, long lastDurableStart) {
    StringBuilder b = new StringBuilder();
    b.append("sector ")
        .append(sector)
        .append(" (byte ")
        .append(sector * SectorStamp.SECTOR_BYTES)
        .append(") holds ")
        .append(name(found))
        .append("; before the run it held ")
        .append(name(content[(int) sector]))
        .append("; writes over it:");
    for (CrashLog.Write w : writes) {
      if (w.covers(sector)) {
        b.append(' ')
            .append(w.id())
            .append(w.durable() ? "[durable" : "[")
            .append(" lines ")
            .append(w.startLine())
            .append("..")
            .append(w.completionLine() == Long.MAX_VALUE ? "running" : w.completionLine())
            .append(']');
      }
    }
    if (lastDurableStart >= 0) {
      b.append("; latest durable write started at line ").append(lastDurableStart);
    }
    return b.toString();
  }

  private static String name(long content) {
    if (content == SectorStamp.ZERO) {
      return "zeros";
    }
    if (content == SectorStamp.FOREIGN) {
      return "foreign bytes";
    }
    if (content == SectorStamp.BASE) {
      return "the base's content";
    }
    return "write " + content;
  }
}
