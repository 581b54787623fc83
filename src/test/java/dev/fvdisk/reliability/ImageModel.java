package dev.fvdisk.reliability;

import dev.fvdisk.testing.SectorOracle;
import dev.fvdisk.testing.SectorStamp;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;

/**
 * What every sector of one image served over HTTP may hold, and the check of a full read against
 * it.
 *
 * <p>Between two verifications (an <em>epoch</em>) the model records every data write a client
 * issued (with the {@link ServiceProcess.Incarnation} it went to, its start and end {@link Ticks}
 * and its outcome) and every flush. A write is <em>acknowledged-durable</em> when it was answered
 * 2xx without {@code ?flush=false}, or answered 2xx and followed by a flush or durable write to the
 * same image, in the same incarnation, that started after it ended and was answered 2xx. A flush in
 * a later incarnation proves nothing: the kill in between may have lost the write.
 *
 * <p>After a verification, per sector, the content read must be:
 *
 * <ul>
 *   <li>the stamp of a write of the epoch that covers it and had not ended before the latest
 *       acknowledged-durable write over the sector started (it may have been issued earlier and won
 *       a race, or overlapped it). A write whose outcome is unknown (timeout, connection lost)
 *       counts as running until its incarnation died;
 *   <li>or its content from before the epoch, only where no acknowledged-durable write of the epoch
 *       covers it.
 * </ul>
 *
 * Anything else is a failure: lost durable data where a durable write covers the sector, foreign
 * content elsewhere (zeros or base content where data was, another sector's or image's stamp, torn
 * or garbage bytes).
 *
 * <p>Zero operations are writes whose sectors read as zeros; an acknowledged snapshot counts as a
 * flush (taking one flushes first). A snapshot taken during the epoch is judged against the same
 * epoch on its first read ({@link #verifySnapshot}), and must read the same ever after ({@link
 * #verifyUnchanged}).
 */
final class ImageModel {

  enum Outcome {
    PENDING,
    ACKED,
    FAILED,
    UNKNOWN
  }

  /** A data write as the client saw it. */
  static final class Write implements SectorOracle.Write {
    final long id;
    final long offsetBytes;
    final int lengthBytes;
    final boolean flush;
    final ServiceProcess.Incarnation incarnation;
    final long start;

    /**
     * A zero operation rather than a data write: its sectors read as zeros, which no stamp tells
     * apart from other zeros, so it is judged by time alone.
     */
    final boolean zero;

    volatile long end = Long.MAX_VALUE;
    volatile Outcome outcome = Outcome.PENDING;

    Write(
        long id,
        long offsetBytes,
        int lengthBytes,
        boolean flush,
        ServiceProcess.Incarnation incarnation) {
      this(id, offsetBytes, lengthBytes, flush, incarnation, false);
    }

    Write(
        long id,
        long offsetBytes,
        int lengthBytes,
        boolean flush,
        ServiceProcess.Incarnation incarnation,
        boolean zero) {
      this.id = id;
      this.offsetBytes = offsetBytes;
      this.lengthBytes = lengthBytes;
      this.flush = flush;
      this.incarnation = incarnation;
      this.zero = zero;
      this.start = Ticks.next();
    }

    void finish(Outcome result) {
      end = Ticks.next();
      outcome = result;
    }

    @Override
    public long id() {
      return id;
    }

    @Override
    public long firstSector() {
      return offsetBytes / SectorStamp.SECTOR_BYTES;
    }

    @Override
    public long endSector() {
      return (offsetBytes + lengthBytes) / SectorStamp.SECTOR_BYTES;
    }

    @Override
    public long start() {
      return start;
    }

    /** The last tick at which it may have changed the disk. */
    @Override
    public long end() {
      return effectiveEnd();
    }

    long effectiveEnd() {
      Outcome o = outcome;
      if (o == Outcome.ACKED || o == Outcome.FAILED) {
        return end;
      }
      return incarnation.deathTick();
    }
  }

  /** A flush operation; acknowledged when ok. */
  record Flush(ServiceProcess.Incarnation incarnation, long start, boolean ok) {}

  /**
   * What one verification found.
   *
   * @param failures descriptions of the first few bad sectors
   */
  record Verdict(
      long bytesVerified,
      long writes,
      long writesVerified,
      long durableWrites,
      long durableWritesVerified,
      long durableBytesVerified,
      long durableBytesLost,
      long foreignSectors,
      long baseSectorsSeen,
      List<String> failures) {}

  private static final int MAX_REPORTED = 8;

  final String name;
  final long tag;
  final long baseTag;
  final long sizeBytes;
  final int chunkBytes;
  final long baseSizeBytes;
  private final long[] content;
  private final BitSet touchedChunks = new BitSet();
  private final List<Write> writes = new ArrayList<>();
  private final List<Flush> flushes = new ArrayList<>();

  /**
   * @param initialContent per sector: {@link Stamp#ZERO} or {@link Stamp#BASE}
   */
  ImageModel(
      String name,
      long tag,
      long baseTag,
      long sizeBytes,
      int chunkBytes,
      long baseSizeBytes,
      java.util.function.IntToLongFunction initialContent) {
    this.name = name;
    this.tag = tag;
    this.baseTag = baseTag;
    this.sizeBytes = sizeBytes;
    this.chunkBytes = chunkBytes;
    this.baseSizeBytes = baseSizeBytes;
    this.content = new long[Math.toIntExact(sizeBytes / SectorStamp.SECTOR_BYTES)];
    for (int s = 0; s < content.length; s++) {
      content[s] = initialContent.applyAsLong(s);
    }
  }

  /**
   * Records a write or zero operation about to be sent.
   *
   * @return whether the write reaches a chunk no earlier write reached (unallocated storage)
   */
  synchronized boolean begin(Write w) {
    writes.add(w);
    int first = (int) (w.offsetBytes / chunkBytes);
    int end = (int) ((w.offsetBytes + w.lengthBytes - 1) / chunkBytes) + 1;
    if (w.zero) {
      // Chunks zeroed whole are unmapped: the next write into one allocates again.
      int whole = (int) ((w.offsetBytes + chunkBytes - 1) / chunkBytes);
      int wholeEnd = (int) ((w.offsetBytes + w.lengthBytes) / chunkBytes);
      if (whole < wholeEnd) {
        touchedChunks.clear(whole, wholeEnd);
      }
      return false;
    }
    boolean fresh = touchedChunks.nextClearBit(first) < end;
    touchedChunks.set(first, end);
    return fresh;
  }

  synchronized void flushed(Flush f) {
    flushes.add(f);
  }

  synchronized int writesInEpoch() {
    return writes.size();
  }

  /**
   * Checks the whole virtual disk, streamed from {@code in}, against the model; then what was read
   * becomes the content before the next epoch. The epoch's snapshots must be verified first ({@link
   * #verifySnapshot}): their bounds are drawn from the same epoch.
   */
  synchronized Verdict verify(InputStream in) throws IOException {
    Set<Write> durable = durableWrites();
    Judge judge = oracle(writes, durable::contains);
    long[] observed = new long[content.length];
    Verdict verdict =
        judgeRead(
            name,
            in,
            judge,
            writes,
            durable,
            observed,
            (sector, found) -> describe(name, sector, found, judge.latestDurableStart(sector)));
    System.arraycopy(observed, 0, content, 0, content.length);
    writes.clear();
    flushes.clear();
    return verdict;
  }

  /**
   * Checks a snapshot taken during this epoch, streamed from {@code in}, on its first read after a
   * restart. Taking a snapshot flushes and then captures the image, so per sector it must hold what
   * the image held at some moment between the request and its answer: a write that started before
   * {@code answered} and had not ended before the latest write over the sector that was
   * acknowledged before {@code requested} started; or the content from before the epoch where no
   * such acknowledged write covers the sector. Acknowledged means answered 2xx in the snapshot's
   * own incarnation (write-back included, as the snapshot flushes first), or acknowledged-durable
   * in an earlier one.
   *
   * @param answered the tick after the 201 arrived; for a request whose answer was lost, the death
   *     tick of its incarnation
   * @param observed receives what each sector held, the snapshot's content from now on
   */
  synchronized Verdict verifySnapshot(
      String snapshot,
      ServiceProcess.Incarnation incarnation,
      long requested,
      long answered,
      InputStream in,
      long[] observed)
      throws IOException {
    Set<Write> imageDurable = durableWrites();
    List<Write> candidates = new ArrayList<>();
    for (Write w : writes) {
      if (w.start < answered) {
        candidates.add(w);
      }
    }
    Set<Write> captured = Collections.newSetFromMap(new IdentityHashMap<>());
    for (Write w : candidates) {
      if (w.outcome == Outcome.ACKED
          && w.end < requested
          && (w.incarnation == incarnation || imageDurable.contains(w))) {
        captured.add(w);
      }
    }
    Judge judge = oracle(candidates, captured::contains);
    String label = name + "@" + snapshot;
    return judgeRead(
        label,
        in,
        judge,
        candidates,
        captured,
        observed,
        (sector, found) ->
            describe(label, sector, found, judge.latestDurableStart(sector))
                + "; snapshot asked for at tick "
                + requested
                + ", answered by tick "
                + (answered == Long.MAX_VALUE ? "never" : answered));
  }

  /**
   * Checks a snapshot read again after a later restart: a snapshot never changes, so every sector
   * must hold exactly what it held at its first verification.
   */
  Verdict verifyUnchanged(String snapshot, long[] expected, InputStream in) throws IOException {
    String label = name + "@" + snapshot;
    Judge judge =
        new Judge() {
          @Override
          public SectorOracle.Judgement judge(int sector, long found) {
            return found == expected[sector]
                ? SectorOracle.Judgement.ALLOWED
                : SectorOracle.Judgement.LOST;
          }

          @Override
          public boolean underDurableWrite(int sector) {
            return true;
          }

          @Override
          public long latestDurableStart(int sector) {
            return -1;
          }
        };
    return judgeRead(
        label,
        in,
        judge,
        List.of(),
        Set.of(),
        new long[expected.length],
        (sector, found) ->
            label
                + ": sector "
                + sector
                + " holds "
                + label(found)
                + ", held "
                + label(expected[sector])
                + " when the snapshot was first verified");
  }

  /**
   * Acknowledged-durable writes of the epoch: answered 2xx without {@code flush=false}, or answered
   * 2xx before an acknowledged flush (or durable write, or snapshot) of the same incarnation
   * started.
   */
  private Set<Write> durableWrites() {
    // Per incarnation, the latest start of an acknowledged flush or durable write.
    Map<ServiceProcess.Incarnation, Long> lastFlushStart = new IdentityHashMap<>();
    for (Flush f : flushes) {
      if (f.ok()) {
        lastFlushStart.merge(f.incarnation(), f.start(), Math::max);
      }
    }
    for (Write w : writes) {
      if (w.flush && w.outcome == Outcome.ACKED) {
        lastFlushStart.merge(w.incarnation, w.start, Math::max);
      }
    }
    Set<Write> durable = Collections.newSetFromMap(new IdentityHashMap<>());
    for (Write w : writes) {
      if (w.outcome == Outcome.ACKED
          && (w.flush || lastFlushStart.getOrDefault(w.incarnation, -1L) > w.end)) {
        durable.add(w);
      }
    }
    return durable;
  }

  /** How a sector read back is judged. */
  private interface Judge {
    SectorOracle.Judgement judge(int sector, long found);

    boolean underDurableWrite(int sector);

    long latestDurableStart(int sector);
  }

  /**
   * The crash oracle over {@code ws} with zero operations added. {@link SectorOracle} knows a write
   * by the stamp in its sectors; zeros carry none, so a sector reading zeros is also allowed where
   * a zero operation over it had not ended before the latest durable write (or zero) over it
   * started. Zero operations still count as writes for that latest durable start.
   */
  private Judge oracle(List<Write> ws, Predicate<Write> durable) {
    SectorOracle oracle = SectorOracle.of(content, ws, durable);
    long[] zeroEnd = new long[content.length];
    Arrays.fill(zeroEnd, -1);
    for (Write w : ws) {
      if (w.zero) {
        long end = w.effectiveEnd();
        for (int s = (int) w.firstSector(); s < w.endSector(); s++) {
          zeroEnd[s] = Math.max(zeroEnd[s], end);
        }
      }
    }
    return new Judge() {
      @Override
      public SectorOracle.Judgement judge(int sector, long found) {
        SectorOracle.Judgement j = oracle.judge(sector, found);
        if (j != SectorOracle.Judgement.ALLOWED
            && found == SectorStamp.ZERO
            && zeroEnd[sector] > oracle.latestDurableStart(sector)) {
          return SectorOracle.Judgement.ALLOWED;
        }
        return j;
      }

      @Override
      public boolean underDurableWrite(int sector) {
        return oracle.underDurableWrite(sector);
      }

      @Override
      public long latestDurableStart(int sector) {
        return oracle.latestDurableStart(sector);
      }
    };
  }

  private interface Describer {
    String describe(int sector, long found);
  }

  /** Reads a whole disk from {@code in} and judges every sector of it. */
  private Verdict judgeRead(
      String what,
      InputStream in,
      Judge judge,
      List<Write> ws,
      Set<Write> durable,
      long[] observed,
      Describer describer)
      throws IOException {
    BitSet bad = new BitSet(content.length);
    long durableSectors = 0;
    long lost = 0;
    long foreign = 0;
    long base = 0;
    List<String> failures = new ArrayList<>();
    byte[] buf = new byte[1 << 20];
    int sector = 0;
    while (sector < content.length) {
      int want =
          (int) Math.min(buf.length, (long) (content.length - sector) * SectorStamp.SECTOR_BYTES);
      int n = in.readNBytes(buf, 0, want);
      if (n < want) {
        throw new IOException(
            what + ": the read ended at byte " + ((long) sector * SectorStamp.SECTOR_BYTES + n));
      }
      for (int at = 0; at < n; at += SectorStamp.SECTOR_BYTES, sector++) {
        long found = SectorStamp.identify(buf, at, sector, tag, baseTag);
        observed[sector] = found;
        SectorOracle.Judgement judgement = judge.judge(sector, found);
        if (found == SectorStamp.BASE) {
          base++;
        }
        if (judgement == SectorOracle.Judgement.ALLOWED) {
          if (judge.underDurableWrite(sector)) {
            durableSectors++;
          }
          continue;
        }
        bad.set(sector);
        if (judgement == SectorOracle.Judgement.LOST) {
          lost++;
        } else {
          foreign++;
        }
        if (failures.size() < MAX_REPORTED) {
          failures.add(describer.describe(sector, found));
        }
      }
    }
    if (in.read() >= 0) {
      throw new IOException(what + ": the read returned more than " + sizeBytes + " bytes");
    }
    long writesVerified = 0;
    long durableVerified = 0;
    for (Write w : ws) {
      int next = bad.nextSetBit((int) w.firstSector());
      if (next < 0 || next >= w.endSector()) {
        writesVerified++;
        if (durable.contains(w)) {
          durableVerified++;
        }
      }
    }
    return new Verdict(
        sizeBytes,
        ws.size(),
        writesVerified,
        durable.size(),
        durableVerified,
        durableSectors * SectorStamp.SECTOR_BYTES,
        lost * SectorStamp.SECTOR_BYTES,
        foreign,
        base,
        List.copyOf(failures));
  }

  private String describe(String what, int sector, long found, long lastDurableStart) {
    StringBuilder b =
        new StringBuilder()
            .append(what)
            .append(": sector ")
            .append(sector)
            .append(" holds ")
            .append(label(found))
            .append(", held ")
            .append(label(content[sector]))
            .append(" before; writes over it:");
    for (Write w : writes) {
      if (sector >= w.firstSector() && sector < w.endSector()) {
        b.append(w.zero ? " zero#" : " #")
            .append(w.id)
            .append('[')
            .append(w.outcome)
            .append(w.flush ? " flush" : " no-flush")
            .append(" gen ")
            .append(w.incarnation.generation)
            .append(" ticks ")
            .append(w.start)
            .append("..")
            .append(w.effectiveEnd() == Long.MAX_VALUE ? "open" : w.effectiveEnd())
            .append(']');
      }
    }
    if (lastDurableStart >= 0) {
      b.append("; latest durable write over it started at tick ").append(lastDurableStart);
    }
    return b.toString();
  }

  static String label(long id) {
    if (id == SectorStamp.ZERO) {
      return "zeros";
    }
    if (id == SectorStamp.FOREIGN) {
      return "foreign bytes";
    }
    if (id == SectorStamp.BASE) {
      return "base content";
    }
    return "write #" + id;
  }
}
