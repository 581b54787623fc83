package dev.fvdisk.bench;

import dev.fvdisk.engine.BaseResolver;
import dev.fvdisk.engine.Image;
import dev.fvdisk.engine.ImageOptions;
import dev.fvdisk.engine.Images;
import dev.fvdisk.engine.io.FileStorage;
import java.io.IOException;
import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * What an open image costs in memory, and how long opening a well-filled image takes, on real
 * files.
 *
 * <p>Memory: opens an empty 1 TiB image and a 1 TiB clone of an empty 1 TiB base and compares the
 * heap each open retains (used heap after several full collections, before and after the open) with
 * what the format says it must hold: 4 bytes of chunk table per chunk, and for the clone one bit
 * per block of the base range. Also shows what the open allocated in passing and the JDK's direct
 * buffer memory, where the channel keeps temporary copies of large heap buffers.
 *
 * <p>Open time: fills an image of 100,000 MiB with 100,000 allocated chunks (one 512-byte sector
 * written at the start of each 1 MiB chunk, so the file stays sparse, flushed every 1,000 chunks)
 * and closes it cleanly; fills a second one the same way and stops it like a crash after the last
 * flush (the storage is closed under the image, so no table switch happens and every mapping is in
 * the journal only). Then times opens: after the clean close (writable and read-only) and after the
 * crash (read-only, which replays in memory; writable, which replays and writes the recovered
 * table, each repetition on a fresh sparse copy of the crashed file). Run as root, it also times
 * writable opens with the page cache dropped before each repetition.
 *
 * <p>Run: {@code ./mvnw -B -q -Pbench test -Dbench.main=dev.fvdisk.bench.OpenBench
 * -Dbench.args="[warm repetitions] [cold repetitions] [memory]"} (defaults 7 and 3; 0 cold
 * repetitions skips dropping the page cache; {@code memory} measures memory only). G1, the default
 * collector, keeps arrays of a region or more in whole regions, so its figures round the table and
 * bitmap up; {@code -Dbench.jvmArgs="-Xmx2g -XX:+UseSerialGC"} shows their exact size.
 */
public final class OpenBench {

  private static final long TIB = 1L << 40;
  private static final int CHUNK_BYTES = ImageOptions.DEFAULT_CHUNK_SIZE_BYTES;
  private static final int FILLED_CHUNKS = 100_000;
  private static final int FLUSH_EVERY_CHUNKS = 1_000;
  private static final long NEEDED_FREE_BYTES = 4L << 30;
  private static final Path DROP_CACHES = Path.of("/proc/sys/vm/drop_caches");

  private OpenBench() {}

  public static void main(String[] args) throws Exception {
    int warm = args.length > 0 ? Integer.parseInt(args[0]) : 7;
    int cold = args.length > 1 ? Integer.parseInt(args[1]) : 3;
    boolean memoryOnly = args.length > 2 && args[2].equals("memory");
    Path dir = Files.createDirectories(Path.of("target", "bench-work", "open"));
    clean(dir);
    long usable = Files.getFileStore(dir).getUsableSpace();
    if (usable < NEEDED_FREE_BYTES) {
      throw new IOException(
          dir + ": " + usable / (1 << 20) + " MiB free, need " + NEEDED_FREE_BYTES / (1 << 20));
    }
    boolean canDropCaches = cold > 0 && Files.isWritable(DROP_CACHES);
    warmUp(dir);
    StringBuilder out = new StringBuilder();
    memory(dir, out);
    if (!memoryOnly) {
      openTime(dir, warm, canDropCaches ? cold : 0, out);
      out.append(
          canDropCaches
              ? "\nPage cache dropped (sync; echo 3 > " + DROP_CACHES + ") before each cold open.\n"
              : "\nPage cache not dropped (not root, or 0 cold repetitions).\n");
    }
    System.out.println(out);
    clean(dir);
  }

  /** Loads the engine's classes and its static buffers, so the first measured open pays neither. */
  private static void warmUp(Path dir) throws IOException {
    Path path = dir.resolve("warmup.fvd");
    try (Image image = Images.create(path, ImageOptions.builder(64L << 20).build())) {
      image.write(0, ByteBuffer.allocate(512));
      image.flush();
    }
    for (int i = 0; i < 3; i++) {
      Images.open(path, BaseResolver.NONE).close();
      Images.open(path, false).close();
    }
    Files.delete(path);
  }

  // ---- memory

  private static void memory(Path dir, StringBuilder out) throws Exception {
    Path thinPath = dir.resolve("thin-1t.fvd");
    Path basePath = dir.resolve("base-1t.fvd");
    Path clonePath = dir.resolve("clone-1t.fvd");
    Images.create(thinPath, ImageOptions.builder(TIB).build()).close();
    Images.create(basePath, ImageOptions.builder(TIB).build()).close();
    Images.setReadOnly(basePath, true);
    ImageOptions cloneOptions = ImageOptions.builder(TIB).build();
    try (Image base = Images.open(basePath, false)) {
      Images.create(clonePath, cloneOptions, base, "base").close();
    }

    out.append("Memory: 1 TiB images, 1 MiB chunks");
    out.append(", clone blocks of ").append(cloneOptions.blockSizeBytes() >> 10).append(" KiB; ");
    out.append("garbage collectors: ");
    out.append(
        String.join(
            ", ",
            ManagementFactory.getGarbageCollectorMXBeans().stream()
                .map(b -> b.getName())
                .toList()));
    out.append("\n\n");
    out.append("| image | table, format | bitmap, format | retained heap | allocated during open")
        .append(" | direct buffers after open |\n");
    out.append("|---|--:|--:|--:|--:|--:|\n");
    List<Image> keep = new ArrayList<>();
    long tableBytes = 4 * (TIB / CHUNK_BYTES);
    long bitmapBytes = TIB / cloneOptions.blockSizeBytes() / 8;
    try {
      Footprint thin = footprint(() -> Images.open(thinPath, BaseResolver.NONE), keep);
      row(out, "thin, writable", tableBytes, 0, thin);
      Image base = Images.open(basePath, false);
      keep.add(base);
      Footprint clone = footprint(() -> Images.open(clonePath, name -> base), keep);
      row(out, "clone, writable (base already open)", tableBytes, bitmapBytes, clone);
      Footprint baseAgain = footprint(() -> Images.open(basePath, false), keep);
      row(out, "base, read-only", tableBytes, 0, baseAgain);
    } finally {
      for (int i = keep.size() - 1; i >= 0; i--) {
        keep.get(i).close();
      }
    }
    out.append('\n');
  }

  private interface Opener {
    Image open() throws IOException;
  }

  private record Footprint(long retainedBytes, long allocatedBytes, long directBytes) {}

  private static Footprint footprint(Opener opener, List<Image> keep) throws Exception {
    long before = settledHeapUsed();
    long allocatedBefore = threadAllocatedBytes();
    keep.add(opener.open());
    long allocated = threadAllocatedBytes() - allocatedBefore;
    long after = settledHeapUsed();
    return new Footprint(after - before, allocated, directBufferBytes());
  }

  private static long settledHeapUsed() throws InterruptedException {
    long used = Long.MAX_VALUE;
    for (int i = 0; i < 4; i++) {
      System.gc();
      Thread.sleep(50);
      used = Math.min(used, ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed());
    }
    return used;
  }

  private static long threadAllocatedBytes() {
    return ((com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean())
        .getCurrentThreadAllocatedBytes();
  }

  private static long directBufferBytes() {
    for (BufferPoolMXBean pool : ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class)) {
      if (pool.getName().equals("direct")) {
        return pool.getMemoryUsed();
      }
    }
    return -1;
  }

  private static void row(
      StringBuilder out, String what, long tableBytes, long bitmapBytes, Footprint f) {
    out.append(
        String.format(
            Locale.ROOT,
            "| %s | %s | %s | %s | %s | %s |%n",
            what,
            mib(tableBytes),
            bitmapBytes == 0 ? "-" : mib(bitmapBytes),
            mib(f.retainedBytes()),
            mib(f.allocatedBytes()),
            mib(f.directBytes())));
  }

  private static String mib(long bytes) {
    return String.format(Locale.ROOT, "%.2f MiB", bytes / (double) (1 << 20));
  }

  // ---- open time

  private static void openTime(Path dir, int warm, int cold, StringBuilder out)
      throws IOException, InterruptedException {
    long sizeBytes = (long) FILLED_CHUNKS * CHUNK_BYTES;
    Path cleanPath = dir.resolve("filled-clean.fvd");
    Path crashPath = dir.resolve("filled-crash.fvd");
    Path copyPath = dir.resolve("filled-crash-copy.fvd");
    long fillNanos = System.nanoTime();
    try (Image image = Images.create(cleanPath, ImageOptions.builder(sizeBytes).build())) {
      fill(image);
    }
    fillNanos = System.nanoTime() - fillNanos;
    Images.create(crashPath, ImageOptions.builder(sizeBytes).build()).close();
    FileStorage storage = FileStorage.open(crashPath, true);
    Image crashed = Image.open(storage, true);
    fill(crashed);
    // The crash: the file is closed under the open image, whose close would switch the table.
    storage.close();

    String facts;
    try (Image image = Images.open(cleanPath, false)) {
      facts =
          String.format(
              Locale.ROOT,
              "%d chunks of %d MiB allocated in a %d MiB image; file %d MiB long, %d MiB on disk;"
                  + " a journal of %d records; filled and closed in %.1f s",
              image.stats().usedBytes() / CHUNK_BYTES,
              CHUNK_BYTES >> 20,
              sizeBytes >> 20,
              Files.size(cleanPath) >> 20,
              diskBytes(cleanPath) >> 20,
              image.stats().journalSectors(),
              fillNanos / 1e9);
    }
    long replayed;
    try (Image image = Images.open(crashPath, false)) {
      replayed = image.stats().replayedJournalRecords();
      if (image.stats().usedBytes() / CHUNK_BYTES != FILLED_CHUNKS) {
        throw new IllegalStateException("crashed image recovered " + image.stats());
      }
    }

    Path oldJournalPath = dir.resolve("filled-old-journal.fvd");
    sparseCopy(cleanPath, oldJournalPath);
    fillJournalWithStaleRecords(oldJournalPath);

    List<String> rows = new ArrayList<>();
    rows.add(time("clean close", "writable", "warm", warm, () -> {}, cleanOpen(cleanPath, true)));
    rows.add(time("clean close", "read-only", "warm", warm, () -> {}, cleanOpen(cleanPath, false)));
    rows.add(
        time(
            "clean close, every journal sector written",
            "writable",
            "warm",
            warm,
            () -> {},
            cleanOpen(oldJournalPath, true)));
    rows.add(
        time("crash", "read-only (replay in memory)", "warm", warm, () -> {}, readOnly(crashPath)));
    rows.add(
        time(
            "crash",
            "writable (replay, cut, table switch)",
            "warm",
            warm,
            () -> sparseCopy(crashPath, copyPath),
            crashOpen(copyPath)));
    if (cold > 0) {
      rows.add(
          time(
              "clean close",
              "writable",
              "dropped",
              cold,
              OpenBench::dropCaches,
              cleanOpen(cleanPath, true)));
      rows.add(
          time(
              "clean close, every journal sector written",
              "writable",
              "dropped",
              cold,
              OpenBench::dropCaches,
              cleanOpen(oldJournalPath, true)));
      rows.add(
          time(
              "crash",
              "writable (replay, cut, table switch)",
              "dropped",
              cold,
              () -> {
                sparseCopy(crashPath, copyPath);
                dropCaches();
              },
              crashOpen(copyPath)));
    }

    out.append("Open time: ").append(facts).append("; the crashed copy replays ");
    out.append(replayed).append(" journal records\n\n");
    out.append("| last stop | open | page cache | reps | min ms | median ms | max ms |\n");
    out.append("|---|---|---|--:|--:|--:|--:|\n");
    rows.forEach(out::append);
  }

  /** Writes one sector at the start of every chunk, flushing every so many chunks. */
  private static void fill(Image image) throws IOException {
    ByteBuffer sector = ByteBuffer.allocateDirect(512);
    for (int c = 0; c < FILLED_CHUNKS; c++) {
      sector.clear();
      sector.putInt(0, c);
      image.write((long) c * CHUNK_BYTES, sector);
      if ((c + 1) % FLUSH_EVERY_CHUNKS == 0) {
        image.flush();
      }
    }
    image.flush();
  }

  private interface Step {
    void run() throws IOException, InterruptedException;
  }

  /** Times only the open; the close after it is not timed. */
  private interface TimedOpen {
    long openNanos() throws IOException;
  }

  private static TimedOpen cleanOpen(Path path, boolean writable) {
    return () -> {
      long t0 = System.nanoTime();
      Image image = writable ? Images.open(path, BaseResolver.NONE) : Images.open(path, false);
      long t = System.nanoTime() - t0;
      image.close();
      return t;
    };
  }

  private static TimedOpen readOnly(Path path) {
    return cleanOpen(path, false);
  }

  private static TimedOpen crashOpen(Path path) {
    return () -> {
      long t0 = System.nanoTime();
      Image image = Images.open(path, BaseResolver.NONE);
      long t = System.nanoTime() - t0;
      if (!image.stats().openedAfterCrash()) {
        throw new IllegalStateException(path + " did not open as after a crash");
      }
      image.close();
      return t;
    };
  }

  private static String time(
      String stop, String open, String cache, int repetitions, Step before, TimedOpen timed)
      throws IOException, InterruptedException {
    long[] nanos = new long[repetitions];
    for (int r = 0; r < repetitions; r++) {
      before.run();
      nanos[r] = timed.openNanos();
    }
    Arrays.sort(nanos);
    return String.format(
        Locale.ROOT,
        "| %s | %s | %s | %d | %.1f | %.1f | %.1f |%n",
        stop,
        open,
        cache,
        repetitions,
        nanos[0] / 1e6,
        nanos[repetitions / 2] / 1e6,
        nanos[repetitions - 1] / 1e6);
  }

  /** Copies a file keeping its holes, and forces the copy, so its write-back is not timed. */
  private static void sparseCopy(Path from, Path to) throws IOException, InterruptedException {
    Files.deleteIfExists(to);
    run("cp", "--sparse=always", from.toString(), to.toString());
    run("sync", to.toString());
  }

  /**
   * Makes a closed image look long-lived: a journal that has wrapped many times has every sector
   * written, with records of older epochs that an open must read and reject one by one. The records
   * the fill left at the journal's start (all of older epochs after the clean close) are copied
   * over the rest of the journal. Offsets are those of docs/format.md §3; both header copies of a
   * cleanly closed image are valid, so the one with the larger generation is the one in force.
   */
  private static void fillJournalWithStaleRecords(Path path) throws IOException {
    try (FileChannel channel =
        FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
      ByteBuffer headers = ByteBuffer.allocate(8192).order(ByteOrder.LITTLE_ENDIAN);
      channel.read(headers, 0);
      int slot = headers.getLong(0x010) >= headers.getLong(4096 + 0x010) ? 0 : 4096;
      long journalOffset = headers.getLong(slot + 0x068);
      long journalBytes = headers.getLong(slot + 0x070);
      ByteBuffer journal = ByteBuffer.allocate(Math.toIntExact(journalBytes));
      channel.read(journal, journalOffset);
      int written = 0;
      while (written < journalBytes && journal.getLong(written) != 0) {
        written += 512;
      }
      if (written == 0) {
        throw new IllegalStateException(path + ": journal holds no records to copy");
      }
      for (int at = written; at < journalBytes; at += written) {
        int n = (int) Math.min(written, journalBytes - at);
        journal.put(at, journal, 0, n);
      }
      channel.write(journal.clear(), journalOffset);
      channel.force(true);
    }
  }

  private static void dropCaches() throws IOException, InterruptedException {
    run("sync");
    Files.writeString(DROP_CACHES, "3");
  }

  private static void run(String... command) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(command).inheritIO().start();
    if (p.waitFor() != 0) {
      throw new IOException(String.join(" ", command) + " failed with " + p.exitValue());
    }
  }

  private static long diskBytes(Path path) throws IOException {
    Process p = new ProcessBuilder("stat", "-c", "%b %B", path.toString()).start();
    String[] parts = new String(p.getInputStream().readAllBytes()).trim().split(" ");
    try {
      p.waitFor();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    return Long.parseLong(parts[0]) * Long.parseLong(parts[1]);
  }

  private static void clean(Path dir) throws IOException {
    try (var files = Files.list(dir)) {
      for (Path p : (Iterable<Path>) files::iterator) {
        if (p.getFileName().toString().endsWith(".fvd")
            || p.getFileName().toString().endsWith(".creating")) {
          Files.delete(p);
        }
      }
    }
  }
}
