package dev.fvdisk.reliability;

import dev.fvdisk.testing.SectorStamp;
import java.io.IOException;
import java.io.InputStream;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The history check: writers and readers race on overlapping ranges of one image, every operation
 * is recorded with its start and end tick, and afterwards every sector of every read must hold the
 * latest completed write or one in flight during the read.
 *
 * <p>Precisely, for a read R and a sector s it returned: let M be the latest start of a write over
 * s that ended before R started (writes that overlap each other have no order, so any of the last
 * completed ones may be "the latest"). The sector may hold a write W over s that started before R
 * ended and did not end before M; or zeros when no write over s ended before R started. A write
 * whose answer was not 204 counts as running for ever.
 */
final class History {

  private record Write(long id, int first, int end, long start, long stop) {}

  private record Read(int first, long[] found, long start, long stop) {}

  private static final String IMAGE = "hist";
  private static final long SIZE = 8L << 20;
  private static final int CHUNK = 256 << 10;
  // The contended span straddles several chunk boundaries and starts unallocated.
  private static final long SPAN_FROM = (1L << 20) + 40 * SectorStamp.SECTOR_BYTES;
  private static final long SPAN_BYTES = 2L << 20;
  private static final long TAG = 0x4849_5354_0000_0001L;

  private final ServiceProcess service;
  private final HttpClient http;
  private final Figures figures;
  private final AtomicLong ids = new AtomicLong();
  private final List<Write> writes = new ArrayList<>();
  private final List<Read> reads = new ArrayList<>();
  private volatile boolean running;
  private long dataPortReads;

  History(ServiceProcess service, HttpClient http, Figures figures) {
    this.service = service;
    this.http = http;
    this.figures = figures;
  }

  void run(int writers, int readers, long millis, long seed) throws Exception {
    HttpResponse<String> created =
        http.send(
            HttpRequest.newBuilder(service.current().base.resolve("api/v1/images"))
                .header("Content-Type", "application/json")
                .POST(
                    HttpRequest.BodyPublishers.ofString(
                        "{\"name\":\""
                            + IMAGE
                            + "\",\"sizeBytes\":"
                            + SIZE
                            + ",\"chunkSizeBytes\":"
                            + CHUNK
                            + "}"))
                .build(),
            HttpResponse.BodyHandlers.ofString());
    if (created.statusCode() != 201) {
      throw new IllegalStateException("create: " + created.statusCode() + " " + created.body());
    }
    running = true;
    List<Thread> threads = new ArrayList<>();
    List<Throwable> errors = new ArrayList<>();
    for (int i = 0; i < writers + readers; i++) {
      Random random = new Random(seed * 17 + i);
      boolean writer = i < writers;
      // Every second writer and reader goes through the data port, the lean listener beside Tomcat.
      boolean viaDataPort = (writer ? i : i - writers) % 2 == 1;
      Thread t =
          new Thread(
              () -> {
                try {
                  while (running) {
                    if (writer) {
                      write(random, viaDataPort);
                    } else {
                      read(random, viaDataPort);
                    }
                  }
                } catch (Throwable e) {
                  synchronized (errors) {
                    errors.add(e);
                  }
                }
              },
              (writer ? "history-writer-" : "history-reader-") + i);
      t.start();
      threads.add(t);
    }
    Thread.sleep(millis);
    running = false;
    for (Thread t : threads) {
      t.join();
    }
    if (!errors.isEmpty()) {
      IllegalStateException e = new IllegalStateException("a history client failed");
      errors.forEach(e::addSuppressed);
      throw e;
    }
    check();
  }

  private int[] range(Random random, int maxBytes) {
    int spanSectors = (int) (SPAN_BYTES / SectorStamp.SECTOR_BYTES);
    int sectors =
        (int)
            Math.round(
                Math.exp(
                    Math.log(8)
                        + random.nextDouble()
                            * (Math.log(maxBytes / SectorStamp.SECTOR_BYTES) - Math.log(8))));
    int first =
        (int) (SPAN_FROM / SectorStamp.SECTOR_BYTES) + random.nextInt(spanSectors - sectors + 1);
    return new int[] {first, first + sectors};
  }

  private void write(Random random, boolean viaDataPort) throws IOException, InterruptedException {
    int[] r = range(random, 256 << 10);
    long id = ids.incrementAndGet();
    byte[] data = new byte[(r[1] - r[0]) * SectorStamp.SECTOR_BYTES];
    SectorStamp.fill(data, TAG, id, r[0]);
    long offset = (long) r[0] * SectorStamp.SECTOR_BYTES;
    boolean flush = random.nextInt(10) == 0;
    long start = Ticks.next();
    HttpResponse<String> answer =
        http.send(
            HttpRequest.newBuilder(
                    (viaDataPort ? service.current().dataBase : service.current().base)
                        .resolve(
                            "api/v1/images/" + IMAGE + "/data" + (flush ? "" : "?flush=false")))
                .timeout(Duration.ofSeconds(120))
                .header("Content-Type", "application/octet-stream")
                .header(
                    "Content-Range", "bytes " + offset + "-" + (offset + data.length - 1) + "/*")
                .PUT(HttpRequest.BodyPublishers.ofByteArray(data))
                .build(),
            HttpResponse.BodyHandlers.ofString());
    long stop = answer.statusCode() == 204 ? Ticks.next() : Long.MAX_VALUE;
    synchronized (writes) {
      writes.add(new Write(id, r[0], r[1], start, stop));
    }
    synchronized (figures) {
      figures.writesIssued++;
      figures.bytesWritten += data.length;
      if (answer.statusCode() == 204) {
        figures.writesAcked++;
        if (!flush) {
          figures.writesAckedNotFlushed++;
        }
        if (viaDataPort) {
          figures.writesAckedViaDataPort++;
        }
      } else {
        figures.writesFailed++;
        figures.unexpectedStatuses++;
        figures.fail("history write answered " + answer.statusCode() + " " + answer.body());
      }
    }
  }

  private void read(Random random, boolean viaDataPort) throws IOException, InterruptedException {
    int[] r = range(random, 512 << 10);
    long offset = (long) r[0] * SectorStamp.SECTOR_BYTES;
    long length = (long) (r[1] - r[0]) * SectorStamp.SECTOR_BYTES;
    long start = Ticks.next();
    HttpResponse<InputStream> answer =
        http.send(
            HttpRequest.newBuilder(
                    (viaDataPort ? service.current().dataBase : service.current().base)
                        .resolve("api/v1/images/" + IMAGE + "/data"))
                .timeout(Duration.ofSeconds(120))
                .header("Range", "bytes=" + offset + "-" + (offset + length - 1))
                .GET()
                .build(),
            HttpResponse.BodyHandlers.ofInputStream());
    byte[] bytes;
    try (InputStream in = answer.body()) {
      bytes = in.readAllBytes();
    }
    long stop = Ticks.next();
    if (answer.statusCode() != 206 || bytes.length != length) {
      throw new IllegalStateException(
          "history read answered " + answer.statusCode() + " with " + bytes.length + " bytes");
    }
    long[] found = new long[r[1] - r[0]];
    for (int i = 0; i < found.length; i++) {
      found[i] = SectorStamp.identify(bytes, i * SectorStamp.SECTOR_BYTES, r[0] + i, TAG, 0);
    }
    synchronized (reads) {
      reads.add(new Read(r[0], found, start, stop));
      if (viaDataPort) {
        dataPortReads++;
      }
    }
  }

  private static boolean writeInFlight(List<Write> over, Read read) {
    for (Write w : over) {
      if (w.start() < read.stop() && w.stop() > read.start()) {
        return true;
      }
    }
    return false;
  }

  private void check() {
    int firstSector = (int) (SPAN_FROM / SectorStamp.SECTOR_BYTES);
    int spanSectors = (int) (SPAN_BYTES / SectorStamp.SECTOR_BYTES);
    List<List<Write>> bySector = new ArrayList<>(spanSectors);
    for (int i = 0; i < spanSectors; i++) {
      bySector.add(new ArrayList<>());
    }
    java.util.Map<Long, Write> byId = new java.util.HashMap<>();
    for (Write w : writes) {
      byId.put(w.id(), w);
      for (int s = w.first(); s < w.end(); s++) {
        bySector.get(s - firstSector).add(w);
      }
    }
    // Per sector, the writes over it sorted by end tick, with the running maximum of their start
    // ticks: the latest start among writes that ended before a tick is one binary search away.
    long[][] stops = new long[spanSectors][];
    long[][] maxStarts = new long[spanSectors][];
    for (int i = 0; i < spanSectors; i++) {
      List<Write> list = bySector.get(i);
      list.sort(java.util.Comparator.comparingLong(Write::stop));
      stops[i] = new long[list.size()];
      maxStarts[i] = new long[list.size()];
      long max = -1;
      for (int k = 0; k < list.size(); k++) {
        max = Math.max(max, list.get(k).start());
        stops[i][k] = list.get(k).stop();
        maxStarts[i][k] = max;
      }
    }
    long sectors = 0;
    long violations = 0;
    long torn = 0;
    for (Read read : reads) {
      for (int i = 0; i < read.found().length; i++) {
        int s = read.first() + i;
        long found = read.found()[i];
        int at = s - firstSector;
        // number of writes over s that ended before the read started
        int ended = java.util.Arrays.binarySearch(stops[at], read.start());
        ended = ended >= 0 ? ended : -ended - 1;
        long latestCompletedStart = ended == 0 ? -1 : maxStarts[at][ended - 1];
        boolean allowed;
        if (found == SectorStamp.ZERO) {
          allowed = latestCompletedStart < 0;
        } else if (found == SectorStamp.FOREIGN) {
          allowed = false;
        } else {
          Write w = byId.get(found);
          allowed =
              w != null
                  && s >= w.first()
                  && s < w.end()
                  && w.start() < read.stop()
                  && w.stop() >= latestCompletedStart;
        }
        sectors++;
        if (!allowed && found == SectorStamp.FOREIGN && writeInFlight(bySector.get(at), read)) {
          // A torn sector under a concurrent overlapping write: counted apart (see the docs).
          torn++;
          if (torn <= 4) {
            figures.note(
                "torn sector "
                    + s
                    + " in a read (ticks "
                    + read.start()
                    + ".."
                    + read.stop()
                    + ") that overlapped a write over it");
          }
          continue;
        }
        if (!allowed) {
          violations++;
          if (violations <= 8) {
            figures.fail(
                "history: a read (ticks "
                    + read.start()
                    + ".."
                    + read.stop()
                    + ") found "
                    + (found == SectorStamp.ZERO
                        ? "zeros"
                        : found == SectorStamp.FOREIGN ? "foreign bytes" : "write #" + found)
                    + " in sector "
                    + s
                    + (byId.containsKey(found)
                        ? " (that write: ticks "
                            + byId.get(found).start()
                            + ".."
                            + byId.get(found).stop()
                            + ")"
                        : "")
                    + "; latest completed write over it started at tick "
                    + latestCompletedStart);
          }
        }
      }
    }
    synchronized (figures) {
      figures.historyReads += reads.size();
      figures.historyDataPortReads += dataPortReads;
      figures.historySectorsChecked += sectors;
      figures.historyViolations += violations;
      figures.historyTornSectors += torn;
      figures.bytesVerified += sectors * SectorStamp.SECTOR_BYTES;
    }
  }
}
