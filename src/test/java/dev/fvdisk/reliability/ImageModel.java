package dev.fvdisk.reliability;

import dev.fvdisk.testing.SectorOracle;
import dev.fvdisk.testing.SectorStamp;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

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
    volatile long end = Long.MAX_VALUE;
    volatile Outcome outcome = Outcome.PENDING;

    Write(
        long id,
        long offsetBytes,
        int lengthBytes,
        boolean flush,
        ServiceProcess.Incarnation incarnation) {
      this.id = id;
      this.offsetBytes = offsetBytes;
      this.lengthBytes = lengthBytes;
      this.flush = flush;
      this.incarnation = incarnation;
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
   * Records a write about to be sent.
   *
   * @return whether the write reaches a chunk no earlier write reached (unallocated storage)
   */
  synchronized boolean begin(Write w) {
    writes.add(w);
    int first = (int) (w.offsetBytes / chunkBytes);
    int end = (int) ((w.offsetBytes + w.lengthBytes - 1) / chunkBytes) + 1;
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
   * becomes the content before the next epoch.
   */
  synchronized Verdict verify(InputStream in) throws IOException {
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
    java.util.Set<Write> durable = java.util.Collections.newSetFromMap(new IdentityHashMap<>());
    for (Write w : writes) {
      if (w.outcome == Outcome.ACKED
          && (w.flush || lastFlushStart.getOrDefault(w.incarnation, -1L) > w.end)) {
        durable.add(w);
      }
    }
    SectorOracle oracle = SectorOracle.of(content, writes, durable::contains);
    Map<Long, Write> byId = new HashMap<>();
    writes.forEach(w -> byId.put(w.id, w));

    BitSet bad = new BitSet(content.length);
    long[] observed = new long[content.length];
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
            name + ": the read ended at byte " + ((long) sector * SectorStamp.SECTOR_BYTES + n));
      }
      for (int at = 0; at < n; at += SectorStamp.SECTOR_BYTES, sector++) {
        long found = SectorStamp.identify(buf, at, sector, tag, baseTag);
        observed[sector] = found;
        SectorOracle.Judgement judgement = oracle.judge(sector, found);
        if (found == SectorStamp.BASE) {
          base++;
        }
        if (judgement == SectorOracle.Judgement.ALLOWED) {
          if (oracle.underDurableWrite(sector)) {
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
          failures.add(describe(sector, found, byId, oracle.latestDurableStart(sector)));
        }
      }
    }
    if (in.read() >= 0) {
      throw new IOException(name + ": the read returned more than " + sizeBytes + " bytes");
    }
    long writesVerified = 0;
    long durableVerified = 0;
    for (Write w : writes) {
      int next = bad.nextSetBit((int) w.firstSector());
      if (next < 0 || next >= w.endSector()) {
        writesVerified++;
        if (durable.contains(w)) {
          durableVerified++;
        }
      }
    }
    Verdict verdict =
        new Verdict(
            sizeBytes,
            writes.size(),
            writesVerified,
            durable.size(),
            durableVerified,
            durableSectors * SectorStamp.SECTOR_BYTES,
            lost * SectorStamp.SECTOR_BYTES,
            foreign,
            base,
            List.copyOf(failures));
    System.arraycopy(observed, 0, content, 0, content.length);
    writes.clear();
    flushes.clear();
    return verdict;
  }

  private String describe(int sector, long found, Map<Long, Write> byId, long lastDurableStart) {
    StringBuilder b =
        new StringBuilder()
            .append(name)
            .append(": sector ")
            .append(sector)
            .append(" holds ")
            .append(label(found))
            .append(", held ")
            .append(label(content[sector]))
            .append(" before; writes over it:");
    for (Write w : byId.values()) {
      if (sector >= w.firstSector() && sector < w.endSector()) {
        b.append(" #")
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

  private static String label(long id) {
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
