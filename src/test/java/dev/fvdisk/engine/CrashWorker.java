package dev.fvdisk.engine;

import dev.fvdisk.engine.io.MemoryStorage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The child process of {@link ProcessKillIntegrationTest}: opens an existing image file for writing
 * (which recovers it if the last process was killed), then writes to it from several threads and
 * flushes now and then, until it is killed. It never stops on its own before {@link
 * Plan#maxRunMillis}; an exit with any status means something went wrong.
 *
 * <p>Every sector it writes carries a {@link SectorStamp}, and every write and flush is announced
 * in a {@link CrashLog}, so the test can work out afterwards exactly which content each sector may
 * hold.
 *
 * <p>The writes mix what stresses the engine: sizes from 4 KiB to 1 MiB spread evenly on a log
 * scale; offsets and lengths that are 4 KiB aligned and others that are only sector aligned; writes
 * that straddle chunk boundaries; writes from different threads that overlap; and writes into
 * chunks nobody has written yet (taken from a budget the test hands out, so that a long run does
 * not run out of them), which allocate chunk slots and journal new mappings.
 */
public final class CrashWorker {

  private static final int MAX_WRITE_SECTORS = (1 << 20) / SectorStamp.SECTOR_BYTES;
  private static final int MIN_WRITE_SECTORS = 4096 / SectorStamp.SECTOR_BYTES;
  private static final int SECTORS_PER_PAGE = 4096 / SectorStamp.SECTOR_BYTES;
  static final long FRESH_SPREAD_MILLIS = 1500;

  /**
   * What one worker run does; passed on the command line.
   *
   * @param firstWriteId ids of this run's writes count up from here
   * @param hotBytes most writes land in {@code [0, hotBytes)}, so they overwrite each other
   * @param freshFirstChunk the first chunk no write has touched yet
   * @param freshChunks how many untouched chunks from {@code freshFirstChunk} on this run may use
   */
  record Plan(
      Path image,
      Path log,
      long firstWriteId,
      long seed,
      int writerThreads,
      long hotBytes,
      long freshFirstChunk,
      long freshChunks,
      long maxRunMillis) {

    List<String> toArgs() {
      return List.of(
          image.toString(),
          log.toString(),
          Long.toString(firstWriteId),
          Long.toString(seed),
          Integer.toString(writerThreads),
          Long.toString(hotBytes),
          Long.toString(freshFirstChunk),
          Long.toString(freshChunks),
          Long.toString(maxRunMillis));
    }

    static Plan fromArgs(String[] args) {
      if (args.length != 9) {
        throw new IllegalArgumentException(
            "usage: CrashWorker image log firstWriteId seed writerThreads hotBytes"
                + " freshFirstChunk freshChunks maxRunMillis");
      }
      return new Plan(
          Path.of(args[0]),
          Path.of(args[1]),
          Long.parseLong(args[2]),
          Long.parseLong(args[3]),
          Integer.parseInt(args[4]),
          Long.parseLong(args[5]),
          Long.parseLong(args[6]),
          Long.parseLong(args[7]),
          Long.parseLong(args[8]));
    }
  }

  private final Plan plan;
  private final Image image;
  private final CrashLog.Writer log;
  private final long sectorsPerChunk;
  private final AtomicLong nextWriteId;
  private final AtomicLong nextFreshChunk;
  private final long startNanos = System.nanoTime();

  private CrashWorker(Plan plan, Image image, CrashLog.Writer log) {
    this.plan = plan;
    this.image = image;
    this.log = log;
    this.sectorsPerChunk = image.chunkSizeBytes() / SectorStamp.SECTOR_BYTES;
    this.nextWriteId = new AtomicLong(plan.firstWriteId());
    this.nextFreshChunk = new AtomicLong(plan.freshFirstChunk());
  }

  public static void main(String[] args) throws Exception {
    Plan plan = Plan.fromArgs(args);
    CrashLog.Writer log = new CrashLog.Writer(plan.log());
    try {
      warmUp();
      log.booted();
      long openStartNanos = System.nanoTime();
      Image image = Images.open(plan.image(), true);
      log.opened((System.nanoTime() - openStartNanos) / 1000, image.stats());
      new CrashWorker(plan, image, log).run();
    } catch (Throwable e) {
      fail(log, e);
    }
    // Still alive: the test never killed us. Exit without closing, as a crash would.
    System.err.println("not killed within " + plan.maxRunMillis() + " ms");
    Runtime.getRuntime().halt(3);
  }

  /**
   * Runs create, crash and recovery once on a throw-away in-memory image, so that the engine's
   * classes are loaded before "booted" is logged: a kill the test aims just after that line then
   * lands in the recovery of the real image rather than in class loading.
   */
  private static void warmUp() throws IOException {
    MemoryStorage storage = new MemoryStorage("warm-up");
    int chunkBytes = 64 << 10;
    ImageOptions options =
        ImageOptions.builder(4L * chunkBytes)
            .chunkSizeBytes(chunkBytes)
            .journalSizeBytes(1024)
            .growthUnitBytes(chunkBytes)
            .build();
    Image crashed = Image.create(storage, options);
    crashed.write(0, ByteBuffer.allocate(SectorStamp.SECTOR_BYTES));
    crashed.flush();
    // Abandoned without close, as a killed process would leave it.
    Image.open(storage.reopen(), true).close();
  }

  private void run() throws InterruptedException {
    List<Thread> threads = new ArrayList<>();
    for (int t = 0; t < plan.writerThreads(); t++) {
      SplittableRandom random = new SplittableRandom(plan.seed() * 31 + t);
      threads.add(new Thread(() -> guarded(() -> writeLoop(random)), "writer-" + t));
    }
    SplittableRandom flusherRandom = new SplittableRandom(plan.seed() * 31 - 1);
    threads.add(new Thread(() -> guarded(() -> flushLoop(flusherRandom)), "flusher"));
    threads.forEach(
        thread -> {
          thread.setDaemon(true);
          thread.start();
        });
    Thread.sleep(plan.maxRunMillis());
  }

  private void writeLoop(SplittableRandom random) throws Exception {
    // Direct, so the channel writes straight from it instead of copying through a temporary.
    ByteBuffer buf = ByteBuffer.allocateDirect(MAX_WRITE_SECTORS * SectorStamp.SECTOR_BYTES);
    while (true) {
      long[] range = chooseRange(random);
      long firstSector = range[0];
      int sectors = (int) range[1];
      long writeId = nextWriteId.getAndIncrement();
      buf.clear();
      SectorStamp.fill(buf, writeId, firstSector, sectors);
      buf.flip();
      long offsetBytes = firstSector * SectorStamp.SECTOR_BYTES;
      log.started(writeId, offsetBytes, buf.remaining());
      image.write(offsetBytes, buf);
      log.completed(writeId);
      if (random.nextInt(16) == 0) {
        flush();
      }
    }
  }

  private void flushLoop(SplittableRandom random) throws Exception {
    while (true) {
      Thread.sleep(random.nextInt(40));
      flush();
    }
  }

  /**
   * Flushes and logs what became durable. The completion count is read before the flush starts, so
   * every write it counts had returned before the flush was called.
   */
  private void flush() throws Exception {
    long completions = log.completions();
    image.flush();
    log.durable(completions);
  }

  /** Returns {first sector, sector count} of the next write. */
  private long[] chooseRange(SplittableRandom random) {
    // Log-uniform: as many writes between 4 and 8 KiB as between 512 KiB and 1 MiB.
    int sectors =
        (int)
            Math.min(
                MAX_WRITE_SECTORS,
                Math.round(MIN_WRITE_SECTORS * Math.pow(2, random.nextDouble() * 8)));
    long hotSectors = plan.hotBytes() / SectorStamp.SECTOR_BYTES;
    int kind = random.nextInt(100);
    if (kind < 15) {
      long[] fresh = claimFresh(1 + random.nextInt(3));
      if (fresh != null) {
        long available = fresh[1] * sectorsPerChunk;
        int n = (int) Math.min(sectors, available);
        return new long[] {fresh[0] * sectorsPerChunk + random.nextLong(available - n + 1), n};
      }
    }
    if (kind < 40) {
      // Straddles the boundary in front of a random chunk, by at least one sector on each side.
      long boundary = (1 + random.nextLong(hotSectors / sectorsPerChunk - 1)) * sectorsPerChunk;
      long first = boundary - 1 - random.nextInt(sectors - 1);
      return new long[] {Math.max(0, Math.min(first, hotSectors - sectors)), sectors};
    }
    long first = random.nextLong(hotSectors - sectors + 1);
    if (random.nextBoolean()) {
      first -= first % SECTORS_PER_PAGE;
      sectors = Math.max(SECTORS_PER_PAGE, sectors - sectors % SECTORS_PER_PAGE);
    }
    return new long[] {first, sectors};
  }

  /**
   * Claims up to {@code wanted} untouched chunks, no more than the budget allows by now; returns
   * {first chunk, count} or null.
   */
  private long[] claimFresh(int wanted) {
    long elapsedMillis = (System.nanoTime() - startNanos) / 1_000_000;
    long allowedEnd =
        plan.freshFirstChunk()
            + Math.min(
                plan.freshChunks(), 1 + plan.freshChunks() * elapsedMillis / FRESH_SPREAD_MILLIS);
    while (true) {
      long first = nextFreshChunk.get();
      long n = Math.min(wanted, allowedEnd - first);
      if (n <= 0) {
        return null;
      }
      if (nextFreshChunk.compareAndSet(first, first + n)) {
        return new long[] {first, n};
      }
    }
  }

  private interface Body {
    void run() throws Exception;
  }

  private void guarded(Body body) {
    try {
      body.run();
    } catch (Throwable e) {
      fail(log, e);
    }
  }

  /** Logs the failure and stops the whole process at once, as a crash would. */
  private static void fail(CrashLog.Writer log, Throwable e) {
    e.printStackTrace();
    try {
      log.failed(e);
    } catch (Throwable ignored) {
      // The stack trace on stderr has to do.
    }
    Runtime.getRuntime().halt(1);
  }
}
