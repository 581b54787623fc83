package dev.fvdisk.reliability;

import dev.fvdisk.testing.SectorStamp;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The images of a kill or soak run, the concurrent HTTP clients that write to them, and the
 * check-and-verify step after a restart.
 *
 * <p>Images: {@code plain-a} (small chunks, so writes straddle chunk boundaries often), {@code
 * plain-b} (default chunks), the read-only base {@code golden} (stamped with base content, with a
 * hole it never wrote, its size not a multiple of the chunk size), and {@code vm}, a larger
 * copy-on-write clone of it. Writes are sector-aligned, 4 KiB to 1 MiB (log-uniform), mostly
 * durable, some with {@code ?flush=false} that a later flush may or may not cover.
 *
 * <p>The snapshot kill test uses two plain images and the clone ({@link #createSnapshotImages}),
 * and has the clients zero ranges as well ({@link #withZeros}).
 */
final class Workload {

  static final int MIN_WRITE = 4 << 10;
  static final int MAX_WRITE = 1 << 20;
  private static final Pattern STATUS = Pattern.compile("\"status\"\\s*:\\s*\"(\\w+)\"");
  private static final Pattern LEAKED = Pattern.compile("\"leakedChunks\"\\s*:\\s*(\\d+)");
  private static final Pattern RECLAIMED = Pattern.compile("\"reclaimedChunks\"\\s*:\\s*(\\d+)");

  private static final long BASE_SIZE = (16L << 20) + 41 * SectorStamp.SECTOR_BYTES;
  private static final long BASE_HOLE_FROM = 4L << 20;
  private static final long BASE_HOLE_TO = (5L << 20) + 7 * SectorStamp.SECTOR_BYTES;

  private final ServiceProcess service;
  private final Figures figures;
  private final HttpClient http;
  private final Duration requestTimeout;
  private final AtomicLong writeIds = new AtomicLong();
  final List<ImageModel> writable = new ArrayList<>();
  ImageModel golden;

  private int recreated;
  private int zeroPercent;
  private volatile boolean running;
  private final List<Thread> clients = new ArrayList<>();
  private final List<Throwable> clientErrors = new ArrayList<>();

  Workload(ServiceProcess service, Figures figures, Duration requestTimeout) {
    this.service = service;
    this.figures = figures;
    this.requestTimeout = requestTimeout;
    this.http =
        HttpClient.newBuilder()
            .version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(2))
            .build();
  }

  HttpClient http() {
    return http;
  }

  Duration requestTimeout() {
    return requestTimeout;
  }

  /**
   * Makes {@code percent} of the clients' operations zero operations: whole chunks (unmapped),
   * parts of one chunk (written as zeros), or both across chunk boundaries.
   */
  Workload withZeros(int percent) {
    this.zeroPercent = percent;
    return this;
  }

  // ---- set-up ----

  void createImages() throws IOException, InterruptedException {
    writable.add(create("plain-a", 40L << 20, 256 << 10));
    writable.add(create("plain-b", 24L << 20, 1 << 20));
    createGoldenAndClone();
  }

  /**
   * A read-only {@code golden} image of base stamps (with a hole), and {@code vm}, a writable clone
   * of it that reads it throughout (no copy-on-read, no prefetch).
   */
  private void createGoldenAndClone() throws IOException, InterruptedException {
    golden =
        new ImageModel(
            "golden",
            tagOf("golden"),
            tagOf("golden"),
            BASE_SIZE,
            1 << 20,
            0,
            s -> inBaseHole(s) ? SectorStamp.ZERO : SectorStamp.BASE);
    expect(201, post("api/v1/images", json("golden", BASE_SIZE, 1 << 20, null)));
    for (long off = 0; off < BASE_SIZE; off += 1 << 20) {
      long end = Math.min(BASE_SIZE, off + (1 << 20));
      // the hole stays unwritten: reads as zeros in the base and through the clone
      long[][] pieces = {{off, Math.min(end, BASE_HOLE_FROM)}, {Math.max(off, BASE_HOLE_TO), end}};
      for (long[] piece : pieces) {
        if (piece[0] < piece[1]) {
          byte[] data = new byte[(int) (piece[1] - piece[0])];
          SectorStamp.fill(data, golden.tag, SectorStamp.BASE, piece[0] / SectorStamp.SECTOR_BYTES);
          expect(204, put("golden", piece[0], data, true));
        }
      }
    }
    expect(
        200,
        send(
            request("api/v1/images/golden")
                .method("PATCH", body("{\"readOnly\":true}"))
                .header("Content-Type", "application/merge-patch+json")));
    long cloneSize = 28L << 20;
    expect(
        201,
        post(
            "api/v1/images",
            "{\"name\":\"vm\",\"base\":\"golden\",\"sizeBytes\":" + cloneSize + "}"));
    long cloneChunk = describeChunk("vm");
    writable.add(
        new ImageModel(
            "vm",
            tagOf("vm"),
            golden.tag,
            cloneSize,
            (int) cloneChunk,
            BASE_SIZE,
            s ->
                s < BASE_SIZE / SectorStamp.SECTOR_BYTES && !inBaseHole(s)
                    ? SectorStamp.BASE
                    : SectorStamp.ZERO));
  }

  /**
   * The images of the snapshot kill test: {@code snap-a} with small chunks, so that writes and
   * zeroes straddle chunk boundaries and copy chunks for snapshots often, {@code snap-b} with the
   * default chunk size, and the clone {@code vm} of {@code golden}, whose snapshots keep copies of
   * its block bitmap and read the base where it had not written. Small, as every surviving snapshot
   * is read in full after each restart.
   */
  void createSnapshotImages() throws IOException, InterruptedException {
    writable.add(create("snap-a", 16L << 20, 256 << 10));
    writable.add(create("snap-b", 12L << 20, 1 << 20));
    createGoldenAndClone();
  }

  /**
   * Deletes a plain image and creates it again under the same name, so that later writes reach
   * unallocated chunks again and a kill must not bring back anything of the old image: the new one
   * has its own stamp tag, so an old sector would read as foreign. Clients must be stopped.
   */
  void recreate(String name) throws IOException, InterruptedException {
    for (int i = 0; i < writable.size(); i++) {
      ImageModel old = writable.get(i);
      if (old.name.equals(name)) {
        HttpResponse<String> deleted = send(request("api/v1/images/" + name).DELETE());
        expect(204, deleted);
        recreated++;
        ImageModel fresh = create(name, old.sizeBytes, old.chunkBytes);
        writable.set(i, fresh);
        return;
      }
    }
    throw new IllegalArgumentException("no writable image " + name);
  }

  private static boolean inBaseHole(long sector) {
    long at = sector * SectorStamp.SECTOR_BYTES;
    return at >= BASE_HOLE_FROM && at < BASE_HOLE_TO;
  }

  private ImageModel create(String name, long size, int chunk)
      throws IOException, InterruptedException {
    expect(201, post("api/v1/images", json(name, size, chunk, null)));
    long tag = tagOf(name) ^ ((long) recreated << 32);
    return new ImageModel(name, tag, 0, size, chunk, 0, s -> SectorStamp.ZERO);
  }

  private long describeChunk(String name) throws IOException, InterruptedException {
    HttpResponse<String> r = send(request("api/v1/images/" + name).GET());
    expect(200, r);
    Matcher m = Pattern.compile("\"chunkSizeBytes\"\\s*:\\s*(\\d+)").matcher(r.body());
    if (!m.find()) {
      throw new IllegalStateException("no chunkSizeBytes in " + r.body());
    }
    return Long.parseLong(m.group(1));
  }

  private static long tagOf(String name) {
    return 0x5EED_0000_0000_0000L ^ name.hashCode();
  }

  private static String json(String name, long size, int chunk, String base) {
    return "{\"name\":\""
        + name
        + "\",\"sizeBytes\":"
        + size
        + ",\"chunkSizeBytes\":"
        + chunk
        + (base == null ? "" : ",\"base\":\"" + base + "\"")
        + "}";
  }

  // ---- clients ----

  /** Starts {@code n} writer threads that run until {@link #stopClients()}. */
  void startClients(int n, long seed) {
    running = true;
    for (int i = 0; i < n; i++) {
      Random random = new Random(seed * 31 + i);
      Thread t = new Thread(() -> clientLoop(random), "http-writer-" + i);
      t.setDaemon(true);
      clients.add(t);
      t.start();
    }
  }

  void stopClients() throws InterruptedException {
    running = false;
    for (Thread t : clients) {
      t.join(120_000);
      if (t.isAlive()) {
        throw new IllegalStateException(t.getName() + " does not stop");
      }
    }
    clients.clear();
    synchronized (clientErrors) {
      if (!clientErrors.isEmpty()) {
        IllegalStateException e = new IllegalStateException("a client failed");
        clientErrors.forEach(e::addSuppressed);
        clientErrors.clear();
        throw e;
      }
    }
  }

  private void clientLoop(Random random) {
    try {
      while (running) {
        ServiceProcess.Incarnation inc = service.current();
        if (!inc.ready) {
          Thread.sleep(5);
          continue;
        }
        ImageModel image = writable.get(random.nextInt(writable.size()));
        if (zeroPercent > 0 && random.nextInt(100) < zeroPercent) {
          zeroOnce(inc, image, random);
        } else if (random.nextInt(100) < 8) {
          flushOnce(inc, image);
        } else {
          writeOnce(inc, image, random);
        }
      }
    } catch (Throwable e) {
      synchronized (clientErrors) {
        clientErrors.add(e);
      }
    }
  }

  private void flushOnce(ServiceProcess.Incarnation inc, ImageModel image)
      throws InterruptedException {
    long start = Ticks.next();
    boolean ok;
    try {
      HttpResponse<String> r =
          http.send(
              HttpRequest.newBuilder(inc.base.resolve("api/v1/images/" + image.name + "/data"))
                  .timeout(requestTimeout)
                  .header("Content-Type", "application/json")
                  .method("PATCH", body("{\"op\":\"flush\"}"))
                  .build(),
              HttpResponse.BodyHandlers.ofString());
      ok = r.statusCode() == 204;
      if (!ok) {
        unexpected(inc, "flush of " + image.name, r);
      }
    } catch (IOException e) {
      ok = false;
    }
    image.flushed(new ImageModel.Flush(inc, start, ok));
    synchronized (figures) {
      figures.flushes++;
    }
  }

  private void writeOnce(ServiceProcess.Incarnation inc, ImageModel image, Random random)
      throws InterruptedException {
    int sectors =
        Math.max(MIN_WRITE, logUniform(random, MIN_WRITE, MAX_WRITE)) / SectorStamp.SECTOR_BYTES;
    int length = sectors * SectorStamp.SECTOR_BYTES;
    long diskSectors = image.sizeBytes / SectorStamp.SECTOR_BYTES;
    long first;
    int shape = random.nextInt(100);
    if (shape < 30) {
      // straddle a chunk boundary
      long chunks = image.sizeBytes / image.chunkBytes;
      long boundary = (1 + random.nextInt((int) Math.max(1, chunks - 1))) * (long) image.chunkBytes;
      first = boundary / SectorStamp.SECTOR_BYTES - 1 - random.nextInt(sectors - 1);
    } else if (shape < 55) {
      // anywhere: early on mostly into chunks no write has reached
      first = (long) (random.nextDouble() * (diskSectors - sectors + 1));
    } else if (shape < 75 && image.baseSizeBytes > 0) {
      // over the base's range, and across its end
      long baseSectors = image.baseSizeBytes / SectorStamp.SECTOR_BYTES;
      first = (long) (random.nextDouble() * (baseSectors - sectors / 2));
    } else {
      // a hot quarter: overwrites and races between clients
      first = (long) (random.nextDouble() * (diskSectors / 4 - sectors));
    }
    first = Math.max(0, Math.min(first, diskSectors - sectors));
    boolean flush = random.nextInt(100) >= 30;
    long offset = first * SectorStamp.SECTOR_BYTES;
    long id = writeIds.incrementAndGet();
    // Every second write goes through the data port, the lean listener beside Tomcat.
    boolean viaDataPort = id % 2 == 0;
    byte[] data = new byte[length];
    SectorStamp.fill(data, image.tag, id, first);
    ImageModel.Write w = new ImageModel.Write(id, offset, length, flush, inc);
    boolean fresh = image.begin(w);
    boolean straddles = offset / image.chunkBytes != (offset + length - 1) / image.chunkBytes;
    boolean overBase = offset < image.baseSizeBytes;
    ImageModel.Outcome outcome;
    try {
      HttpResponse<String> r = put(inc, image.name, offset, data, flush, viaDataPort);
      if (r.statusCode() == 204) {
        outcome = ImageModel.Outcome.ACKED;
      } else {
        outcome = ImageModel.Outcome.FAILED;
        unexpected(inc, "write of " + length + " bytes at " + offset + " to " + image.name, r);
      }
    } catch (IOException e) {
      outcome = ImageModel.Outcome.UNKNOWN;
    }
    w.finish(outcome);
    synchronized (figures) {
      figures.writesIssued++;
      figures.bytesWritten += length;
      switch (outcome) {
        case ACKED -> {
          figures.writesAcked++;
          if (!flush) {
            figures.writesAckedNotFlushed++;
          }
          if (viaDataPort) {
            figures.writesAckedViaDataPort++;
          }
        }
        case FAILED -> figures.writesFailed++;
        default -> figures.writesUnknown++;
      }
      if (straddles) {
        figures.writesStraddlingChunks++;
      }
      if (fresh) {
        figures.writesIntoFreshChunks++;
      }
      if (overBase) {
        figures.writesOverBase++;
      }
    }
  }

  /**
   * Zeroes a sector-aligned range: one to three whole chunks, or a part of one chunk, or a range
   * across chunk boundaries with partial chunks at its ends; half of them in the hot quarter where
   * writes race. A third of them acknowledged before they are durable, by {@code ?flush=false} or
   * by {@code "flush": false} in the body.
   */
  private void zeroOnce(ServiceProcess.Incarnation inc, ImageModel image, Random random)
      throws InterruptedException {
    long chunk = image.chunkBytes;
    long chunks = image.sizeBytes / chunk;
    long span = random.nextBoolean() ? Math.max(1, chunks / 4) : chunks;
    int sectorsPerChunk = (int) (chunk / SectorStamp.SECTOR_BYTES);
    long offset;
    long length;
    int shape = random.nextInt(100);
    if (shape < 40) {
      long n = 1 + random.nextInt(3);
      long first = random.nextLong(Math.max(1, span - n + 1));
      offset = first * chunk;
      length = Math.min(n, chunks - first) * chunk;
    } else if (shape < 70) {
      int sectors = Math.min(sectorsPerChunk - 1, logUniform(random, 1, sectorsPerChunk - 1));
      long first = random.nextLong(span);
      int at = random.nextInt(sectorsPerChunk - sectors + 1);
      offset = first * chunk + (long) at * SectorStamp.SECTOR_BYTES;
      length = (long) sectors * SectorStamp.SECTOR_BYTES;
    } else {
      long first = random.nextLong(Math.max(1, Math.min(span, chunks - 1)));
      int head = 1 + random.nextInt(sectorsPerChunk - 1);
      int tail = 1 + random.nextInt(sectorsPerChunk - 1);
      long whole = random.nextInt(2);
      offset = (first + 1) * chunk - (long) head * SectorStamp.SECTOR_BYTES;
      length = (long) (head + tail) * SectorStamp.SECTOR_BYTES + whole * chunk;
    }
    length = Math.min(length, image.sizeBytes - offset);
    boolean flush = random.nextInt(100) >= 30;
    boolean inQuery = random.nextBoolean();
    long id = writeIds.incrementAndGet();
    ImageModel.Write w = new ImageModel.Write(id, offset, (int) length, flush, inc, true);
    image.begin(w);
    boolean wholeChunk = (offset + chunk - 1) / chunk < (offset + length) / chunk;
    String body =
        "{\"op\":\"zero\",\"offsetBytes\":"
            + offset
            + ",\"lengthBytes\":"
            + length
            + (!flush && !inQuery ? ",\"flush\":false" : "")
            + "}";
    ImageModel.Outcome outcome;
    try {
      HttpResponse<String> r =
          http.send(
              HttpRequest.newBuilder(
                      inc.base.resolve(
                          "api/v1/images/"
                              + image.name
                              + "/data"
                              + (!flush && inQuery ? "?flush=false" : "")))
                  .timeout(requestTimeout)
                  .header("Content-Type", "application/json")
                  .method("PATCH", body(body))
                  .build(),
              HttpResponse.BodyHandlers.ofString());
      if (r.statusCode() == 204) {
        outcome = ImageModel.Outcome.ACKED;
      } else {
        outcome = ImageModel.Outcome.FAILED;
        unexpected(inc, "zero " + body + " of " + image.name, r);
      }
    } catch (IOException e) {
      outcome = ImageModel.Outcome.UNKNOWN;
    }
    w.finish(outcome);
    synchronized (figures) {
      figures.zerosIssued++;
      figures.bytesZeroed += length;
      if (wholeChunk) {
        figures.zerosWholeChunks++;
      }
      switch (outcome) {
        case ACKED -> {
          figures.zerosAcked++;
          if (!flush) {
            figures.zerosAckedNotFlushed++;
          }
        }
        case FAILED -> {}
        default -> figures.zerosUnknown++;
      }
    }
  }

  void unexpected(ServiceProcess.Incarnation inc, String what, HttpResponse<String> r) {
    synchronized (figures) {
      figures.unexpectedStatuses++;
      figures.fail(
          "generation "
              + inc.generation
              + ": "
              + what
              + " answered "
              + r.statusCode()
              + " "
              + r.body());
    }
  }

  private static int logUniform(Random random, int min, int max) {
    double l = Math.log(min) + random.nextDouble() * (Math.log(max) - Math.log(min));
    return (int) Math.round(Math.exp(l));
  }

  // ---- after a restart ----

  /** Checks every image; with {@code repair}, also reclaims leaked chunks of writable images. */
  void checkAll(boolean repair) throws IOException, InterruptedException {
    for (ImageModel image : all()) {
      boolean fix = repair && image != golden;
      HttpResponse<String> r =
          send(
              request("api/v1/images/" + image.name + "/check" + (fix ? "?repair=true" : ""))
                  .POST(HttpRequest.BodyPublishers.noBody()));
      expect(200, r);
      Matcher status = STATUS.matcher(r.body());
      Matcher leaked = LEAKED.matcher(r.body());
      Matcher reclaimed = RECLAIMED.matcher(r.body());
      if (!status.find() || !leaked.find() || !reclaimed.find()) {
        throw new IllegalStateException("unexpected check report " + r.body());
      }
      synchronized (figures) {
        figures.checks++;
        switch (status.group(1)) {
          case "ok" -> figures.checksOk++;
          case "leaks" -> figures.checksLeaks++;
          default -> {
            figures.corruptResults++;
            figures.fail(
                "generation "
                    + service.current().generation
                    + ": check of "
                    + image.name
                    + ": "
                    + r.body());
          }
        }
        if (fix) {
          figures.repairs++;
          figures.leakedChunksReported += Long.parseLong(leaked.group(1));
          figures.reclaimedChunks += Long.parseLong(reclaimed.group(1));
        } else if (image == golden && !status.group(1).equals("ok")) {
          figures.fail("the read-only base checks as " + r.body());
        }
      }
    }
  }

  /** Reads every image in full and checks every sector against its model. */
  void verifyAll() throws IOException, InterruptedException {
    for (ImageModel image : all()) {
      HttpResponse<InputStream> r =
          http.send(
              request("api/v1/images/" + image.name + "/data").GET().build(),
              HttpResponse.BodyHandlers.ofInputStream());
      try (InputStream in = r.body()) {
        if (r.statusCode() != 200) {
          throw new IllegalStateException(
              "GET "
                  + image.name
                  + " answered "
                  + r.statusCode()
                  + ": "
                  + new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8));
        }
        ImageModel.Verdict v = image.verify(in);
        figures.add(v);
      }
    }
  }

  private List<ImageModel> all() {
    List<ImageModel> all = new ArrayList<>(writable);
    if (golden != null) {
      all.add(golden);
    }
    return all;
  }

  // ---- HTTP helpers ----

  private HttpRequest.Builder request(String path) {
    return HttpRequest.newBuilder(service.current().base.resolve(path))
        .timeout(Duration.ofSeconds(120));
  }

  private HttpResponse<String> post(String path, String json)
      throws IOException, InterruptedException {
    return send(request(path).header("Content-Type", "application/json").POST(body(json)));
  }

  private HttpResponse<String> put(String image, long offset, byte[] data, boolean flush)
      throws IOException, InterruptedException {
    return put(service.current(), image, offset, data, flush, false);
  }

  private HttpResponse<String> put(
      ServiceProcess.Incarnation inc,
      String image,
      long offset,
      byte[] data,
      boolean flush,
      boolean viaDataPort)
      throws IOException, InterruptedException {
    URI uri =
        (viaDataPort ? inc.dataBase : inc.base)
            .resolve("api/v1/images/" + image + "/data" + (flush ? "" : "?flush=false"));
    return http.send(
        HttpRequest.newBuilder(uri)
            .timeout(requestTimeout)
            .header("Content-Type", "application/octet-stream")
            .header("Content-Range", "bytes " + offset + "-" + (offset + data.length - 1) + "/*")
            .PUT(HttpRequest.BodyPublishers.ofByteArray(data))
            .build(),
        HttpResponse.BodyHandlers.ofString());
  }

  private HttpResponse<String> send(HttpRequest.Builder b)
      throws IOException, InterruptedException {
    return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
  }

  private static HttpRequest.BodyPublisher body(String json) {
    return HttpRequest.BodyPublishers.ofString(json);
  }

  private static void expect(int status, HttpResponse<String> r) {
    if (r.statusCode() != status) {
      throw new IllegalStateException(
          r.request().method()
              + " "
              + r.request().uri()
              + " answered "
              + r.statusCode()
              + " (expected "
              + status
              + "): "
              + r.body());
    }
  }
}
