package dev.fvdisk.testing;

import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Predicate;

/**
 * The one crash oracle, shared by the engine's crash tests, the HTTP reliability harness and
 * (later) the NBD tests: what each 512-byte sector of a disk may hold after a run that may have
 * been killed, given what it held before the run and the writes of the run (each sector of which
 * carries its {@link SectorStamp}).
 *
 * <p>Per sector, what is read back must be
 *
 * <ul>
 *   <li>the stamp of a write of the run that covers it, unless that write had ended before the
 *       latest durable write over the sector started: the durable write then replaced it for good.
 *       Writes that overlapped in time have no order, so each may win; a write whose end is unknown
 *       (still running at the kill, or its answer lost) may have landed until the process died;
 *   <li>or its content from before the run, only where no durable write of the run covers it.
 * </ul>
 *
 * Anything else is a failure: {@linkplain Judgement#LOST lost} durable data under a durable write,
 * {@linkplain Judgement#FOREIGN foreign} content elsewhere (garbage, zeros where data was, another
 * sector's or image's data, a stale write).
 *
 * <p>Times are on whatever clock the caller's log uses (log lines, ticks); only their order
 * matters.
 */
public final class SectorOracle {

  /** A write of the run as the oracle needs it. */
  public interface Write {
    long id();

    /** The first sector it covers. */
    long firstSector();

    /** One past the last sector it covers. */
    long endSector();

    /** When it was issued. */
    long start();

    /** The last moment it may have changed the disk; {@link Long#MAX_VALUE} when unbounded. */
    long end();
  }

  /** The verdict on one sector. */
  public enum Judgement {
    ALLOWED,
    /** Not allowed, under a durable write: acknowledged data lost. */
    LOST,
    /** Not allowed, and no durable write covers it. */
    FOREIGN
  }

  private final long[] before;
  private final long[] latestDurableStart;
  private final Map<Long, Write> byId = new HashMap<>();

  private SectorOracle(
      long[] before, Collection<? extends Write> writes, Predicate<Write> durable) {
    this.before = before;
    this.latestDurableStart = new long[before.length];
    Arrays.fill(latestDurableStart, -1);
    for (Write w : writes) {
      byId.put(w.id(), w);
      if (durable.test(w)) {
        for (long s = w.firstSector(); s < w.endSector(); s++) {
          int i = (int) s;
          latestDurableStart[i] = Math.max(latestDurableStart[i], w.start());
        }
      }
    }
  }

  /**
   * The oracle for one verification.
   *
   * @param before per sector, the stamp's write id (or {@link SectorStamp#ZERO}, {@link
   *     SectorStamp#BASE}) it held before the run; read, not copied or changed
   * @param writes the writes of the run
   * @param durable which of them are durable (acknowledged as such, or followed by an acknowledged
   *     flush)
   */
  public static <W extends Write> SectorOracle of(
      long[] before, Collection<W> writes, Predicate<? super W> durable) {
    @SuppressWarnings("unchecked")
    Predicate<Write> test = w -> durable.test((W) w);
    return new SectorOracle(before, writes, test);
  }

  /** Judges {@code found} ({@link SectorStamp#identify}'s answer) read back from {@code sector}. */
  public Judgement judge(int sector, long found) {
    long durableStart = latestDurableStart[sector];
    boolean allowed;
    if (found == SectorStamp.FOREIGN) {
      allowed = false;
    } else if (found == before[sector]) {
      allowed = durableStart < 0;
    } else {
      Write w = byId.get(found);
      allowed =
          w != null
              && sector >= w.firstSector()
              && sector < w.endSector()
              && w.end() > durableStart;
    }
    if (allowed) {
      return Judgement.ALLOWED;
    }
    return durableStart >= 0 ? Judgement.LOST : Judgement.FOREIGN;
  }

  /** Whether a durable write of the run covers {@code sector}. */
  public boolean underDurableWrite(int sector) {
    return latestDurableStart[sector] >= 0;
  }

  /** When the latest durable write over {@code sector} started, or -1 when none covers it. */
  public long latestDurableStart(int sector) {
    return latestDurableStart[sector];
  }
}
