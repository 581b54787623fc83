package dev.fvdisk.engine;

import dev.fvdisk.engine.io.FileStorage;
import dev.fvdisk.engine.io.MemoryStorage;
import dev.fvdisk.testing.SectorStamp;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicLong;
import org.jspecify.annotations.Nullable;

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
 *
 * <p>With {@link Plan#cloneSettings} set, the image is a copy-on-write clone: the worker opens its
 * base read-only and the clone for writing, switches copy-on-read and prefetching on or off as the
 * plan says (both durable header changes, so a kill can land in them too), and writes as above.
 * Writes that cover part of a block still in the base make the engine merge the base's bytes into a
 * whole block; some writes straddle the end of the base's range. With copy-on-read, reader threads
 * read random ranges at the same time, so blocks are copied from the base while writers write; with
 * prefetching, a background thread copies the whole base, paced by {@link #RACING_PREFETCH} to run
 * flat out alongside the writers, and switches the clone to standalone when it is done.
 */
public final class CrashWorker {

  private static final int MAX_WRITE_SECTORS = (1 << 20) / SectorStamp.SECTOR_BYTES;
  private static final int MIN_WRITE_SECTORS = 4096 / SectorStamp.SECTOR_BYTES;
  private static final int SECTORS_PER_PAGE = 4096 / SectorStamp.SECTOR_BYTES;
  static final long FRESH_SPREAD_MILLIS = 1500;

  /** The name a clone gives its base; {@link #openClone} resolves it. */
  static final String BASE_LOCATOR = "base";

  /**
   * Prefetching that never waits for client I/O to go quiet and never throttles itself, so its
   * copies race with the writers and with the kill.
   */
  static final PrefetchTuning RACING_PREFETCH = new PrefetchTuning(256 << 10, 100, 80, 0, 1, 0);

  /**
   * Settings of a run on a clone.
   *
   * @param base the read-only base image file
   * @param copyOnRead switch copy-on-read on for this run (off otherwise)
   * @param readerThreads threads that read random ranges while the writers write
   * @param prefetch switch prefetching on, with no start delay, for this run (off otherwise)
   */
  record Clone(Path base, boolean copyOnRead, int readerThreads, boolean prefetch) {}

  /**
   * What one worker run does; passed on the command line.
   *
   * @param firstWriteId ids of this run's writes count up from here
   * @param hotBytes most writes land in {@code [0, hotBytes)}, so they overwrite each other
   * @param freshFirstChunk the first chunk no write has touched yet
   * @param freshChunks how many untouched chunks from {@code freshFirstChunk} on this run may use
   * @param cloneSettings the clone settings when the image is a clone, else null
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
      long maxRunMillis,
      @Nullable Clone cloneSettings) {

    List<String> toArgs() {
      List<String> args =
          new ArrayList<>(
              List.of(
                  image.toString(),
                  log.toString(),
                  Long.toString(firstWriteId),
                  Long.toString(seed),
                  Integer.toString(writerThreads),
                  Long.toString(hotBytes),
                  Long.toString(freshFirstChunk),
                  Long.toString(freshChunks),
                  Long.toString(maxRunMillis)));
      if (cloneSettings != null) {
        args.addAll(
            List.of(
                cloneSettings.base().toString(),
                Boolean.toString(cloneSettings.copyOnRead()),
                Integer.toString(cloneSettings.readerThreads()),
                Boolean.toString(cloneSettings.prefetch())));
      }
      return args;
    }

    static Plan fromArgs(String[] args) {
      if (args.length != 9 && args.length != 13) {
        throw new IllegalArgumentException(
            "usage: CrashWorker image log firstWriteId seed writerThreads hotBytes"
                + " freshFirstChunk freshChunks maxRunMillis"
                + " [base copyOnRead readerThreads prefetch]");
      }
      Clone clone =
          args.length == 9
              ? null
              : new Clone(
                  Path.of(args[9]),
                  Boolean.parseBoolean(args[10]),
                  Integer.parseInt(args[11]),
                  Boolean.parseBoolean(args[12]));
      return new Plan(
          Path.of(args[0]),
          Path.of(args[1]),
          Long.parseLong(args[2]),
          Long.parseLong(args[3]),
          Integer.parseInt(args[4]),
          Long.parseLong(args[5]),
          Long.parseLong(args[6]),
          Long.parseLong(args[7]),
          Long.parseLong(args[8]),
          clone);
    }
  }

  private final Plan plan;
  private final Image image;
  private final CrashLog.Writer log;
  private final long sectorsPerChunk;
  private final long baseEndSector;
  private final AtomicLong nextWriteId;
  private final AtomicLong nextFreshChunk;
  private final long startNanos = System.nanoTime();

  private CrashWorker(Plan plan, Image image, CrashLog.Writer log) {
    this.plan = plan;
    this.image = image;
    this.log = log;
    this.sectorsPerChunk = image.chunkSizeBytes() / SectorStamp.SECTOR_BYTES;
    long baseBytes = image.prefetchStatus().totalBytes();
    this.baseEndSector = baseBytes / SectorStamp.SECTOR_BYTES;
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
      Image image;
      Clone clone = plan.cloneSettings();
      if (clone == null) {
        image = Images.open(plan.image(), true);
      } else {
        // The clone uses its base for as long as it is open; the process ends without closing.
        Image base = Images.open(clone.base(), false);
        image = openClone(plan.image(), base, true, RACING_PREFETCH);
      }
      log.opened((System.nanoTime() - openStartNanos) / 1000, image.stats());
      if (clone != null) {
        image.setCopyOnRead(clone.copyOnRead());
        image.setPrefetch(clone.prefetch(), 0);
      }
      new CrashWorker(plan, image, log).run();
    } catch (Throwable e) {
      fail(log, e);
    }
    // Still alive: the test never killed us. Exit without closing, as a crash would.
    System.err.println("not killed within " + plan.maxRunMillis() + " ms");
    Runtime.getRuntime().halt(3);
  }

  /**
   * Opens the clone image file at {@code path} with {@code base} as the base it names.
   *
   * @param base the base, open read-only; the clone never closes it
   */
  static Image openClone(Path path, Image base, boolean writable, PrefetchTuning prefetchTuning)
      throws IOException {
    FileStorage storage = FileStorage.open(path, writable);
    try {
      return Image.open(
          storage, writable, locator -> BASE_LOCATOR.equals(locator) ? base : null, prefetchTuning);
    } catch (IOException | RuntimeException e) {
      storage.close();
      throw e;
    }
  }

  /**
   * Runs create, crash and recovery once on a throw-away in-memory image and on a clone of it, so
   * that the engine's classes are loaded before "booted" is logged: a kill the test aims just after
   * that line then lands in the recovery of the real image rather than in class loading.
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

    Image.setReadOnly(storage.reopen(), true);
    try (Image base = Image.open(storage.reopen(), false)) {
      MemoryStorage cloneStorage = new MemoryStorage("warm-up clone");
      Image clone =
          Image.create(
              cloneStorage,
              ImageOptions.builder(8L * chunkBytes)
                  .chunkSizeBytes(chunkBytes)
                  .blockSizeBytes(4096)
                  .journalSizeBytes(1024)
                  .growthUnitBytes(chunkBytes)
                  .copyOnRead(true)
                  .build(),
              base,
              BASE_LOCATOR);
      clone.write(SectorStamp.SECTOR_BYTES, ByteBuffer.allocate(SectorStamp.SECTOR_BYTES));
      clone.read(0, ByteBuffer.allocate(chunkBytes));
      clone.flush();
      Image reopened = Image.open(cloneStorage.reopen(), true, locator -> base, RACING_PREFETCH);
      reopened.setPrefetch(true, 0);
      reopened.close();
    }
  }

  private void run() throws InterruptedException {
    List<Thread> threads = new ArrayList<>();
    for (int t = 0; t < plan.writerThreads(); t++) {
      SplittableRandom random = new SplittableRandom(plan.seed() * 31 + t);
      threads.add(new Thread(() -> guarded(() -> writeLoop(random)), "writer-" + t));
    }
    int readers = plan.cloneSettings() == null ? 0 : plan.cloneSettings().readerThreads();
    for (int t = 0; t < readers; t++) {
      SplittableRandom random = new SplittableRandom(plan.seed() * 37 + t);
      threads.add(new Thread(() -> guarded(() -> readLoop(random)), "reader-" + t));
    }
    SplittableRandom flusherRandom = new SplittableRandom(plan.seed() * 31 - 1);
    threads.add(new Thread(() -> guarded(() -> flushLoop(flusherRandom)), "flusher"));
    if (plan.cloneSettings() != null && plan.cloneSettings().prefetch()) {
      threads.add(new Thread(() -> guarded(this::watchPrefetch), "prefetch-watcher"));
    }
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
      SectorStamp.fill(buf, SectorStamp.IMAGE_TAG, writeId, firstSector, sectors);
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

  /**
   * Reads random ranges of the whole disk, with the sizes writes have. In a clone with copy-on-read
   * this stores the whole blocks read from the base in the clone too. What it reads is not checked
   * here: a read may overlap a write in flight, whose sectors it may see half copied.
   */
  private void readLoop(SplittableRandom random) throws Exception {
    ByteBuffer buf = ByteBuffer.allocateDirect(MAX_WRITE_SECTORS * SectorStamp.SECTOR_BYTES);
    long diskSectors = image.sizeBytes() / SectorStamp.SECTOR_BYTES;
    while (true) {
      int sectors = randomSectorCount(random);
      long first = random.nextLong(diskSectors - sectors + 1);
      buf.clear().limit(sectors * SectorStamp.SECTOR_BYTES);
      image.read(first * SectorStamp.SECTOR_BYTES, buf);
    }
  }

  /** Logs when prefetching has finished, to a millisecond, so the test can aim kills at it. */
  private void watchPrefetch() throws Exception {
    while (image.prefetchStatus().state() != PrefetchStatus.State.DONE) {
      Thread.sleep(1);
    }
    log.prefetchDone((System.nanoTime() - startNanos) / 1_000_000);
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
    int sectors = randomSectorCount(random);
    long hotSectors = plan.hotBytes() / SectorStamp.SECTOR_BYTES;
    int kind = random.nextInt(100);
    if (kind < 5 && baseEndSector > sectors && baseEndSector < hotSectors) {
      // A clone's write across the end of its base's range: copy-on-write on one side only.
      long first = baseEndSector - 1 - random.nextInt(sectors - 1);
      return new long[] {Math.min(first, hotSectors - sectors), sectors};
    }
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

  /** Log-uniform: as many between 4 and 8 KiB as between 512 KiB and 1 MiB. */
  private static int randomSectorCount(SplittableRandom random) {
    return (int)
        Math.min(
            MAX_WRITE_SECTORS,
            Math.round(MIN_WRITE_SECTORS * Math.pow(2, random.nextDouble() * 8)));
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
