package dev.fvdisk.reliability;

import dev.fvdisk.testing.SectorStamp;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The snapshot client of the snapshot kill test, and the snapshots' part of the verification after
 * a restart.
 *
 * <p>One thread, next to the {@link Workload} clients, takes snapshots of the writable images and
 * deletes random ones of them (any, not only the oldest), keeping each image below a cap far under
 * the service's limit of 255. Every snapshot is recorded with the incarnation it was asked of, the
 * tick before its request and the tick after its 201, and what became of its deletion. A 201 also
 * counts as a flush of the image ({@link ImageModel.Flush}): taking a snapshot flushes first.
 *
 * <p>After a restart ({@link #verify}), before the images themselves are verified (a new snapshot's
 * bounds come from the image's epoch):
 *
 * <ul>
 *   <li>the list of each image's snapshots holds every snapshot answered 201 and not since asked to
 *       be deleted, and nothing deleted with 204, nothing resolved as absent before, nothing
 *       unknown; a snapshot deleted with 204 answers 404;
 *   <li>a snapshot whose creation or deletion was in flight at the kill may be listed or not; from
 *       then on it is what the list said;
 *   <li>every listed snapshot is read in full: on its first read each sector must hold what the
 *       image held at some moment between the snapshot's request and its answer ({@link
 *       ImageModel#verifySnapshot}), and on every later read exactly what that first read found.
 * </ul>
 */
final class Snapshots {

  private static final Pattern NAME = Pattern.compile("\"name\"\\s*:\\s*\"([^\"]+)\"");

  /** One snapshot as the client saw it. */
  static final class Snap {
    final String name;
    final ImageModel image;
    final ServiceProcess.Incarnation incarnation;
    final long requested;
    volatile long answered = Long.MAX_VALUE;
    volatile ImageModel.Outcome created = ImageModel.Outcome.PENDING;

    /** Null until a deletion is asked for. */
    volatile ImageModel.Outcome deleted;

    /** What each sector held at its first verification; null before. */
    long[] content;

    Snap(String name, ImageModel image, ServiceProcess.Incarnation incarnation) {
      this.name = name;
      this.image = image;
      this.incarnation = incarnation;
      this.requested = Ticks.next();
    }

    /** The last tick at which the snapshot may have been taken. */
    long takenBy() {
      return created == ImageModel.Outcome.ACKED ? answered : incarnation.deathTick();
    }
  }

  private final ServiceProcess service;
  private final Workload workload;
  private final Figures figures;
  private final HttpClient http;
  private final Duration requestTimeout;
  private final int maxPerImage;
  private final AtomicLong names = new AtomicLong();

  /** Per image, its snapshots that exist or may exist, oldest first. */
  private final Map<ImageModel, List<Snap>> snapshots = new LinkedHashMap<>();

  /** Names of snapshots known gone, per image name: they must never be listed again. */
  private final Map<String, Set<String>> gone = new LinkedHashMap<>();

  private volatile boolean running;
  private Thread thread;
  private Throwable error;

  Snapshots(ServiceProcess service, Workload workload, Figures figures, int maxPerImage) {
    if (maxPerImage < 1 || maxPerImage > 254) {
      throw new IllegalArgumentException("at most 254 snapshots per image, leaving room below 255");
    }
    this.service = service;
    this.workload = workload;
    this.figures = figures;
    this.http = workload.http();
    this.requestTimeout = workload.requestTimeout();
    this.maxPerImage = maxPerImage;
  }

  // ---- the client ----

  void start(long seed) {
    running = true;
    Random random = new Random(seed * 37 + 11);
    thread = new Thread(() -> loop(random), "http-snapshots");
    thread.setDaemon(true);
    thread.start();
  }

  void stop() throws InterruptedException {
    running = false;
    thread.join(120_000);
    if (thread.isAlive()) {
      throw new IllegalStateException("the snapshot client does not stop");
    }
    if (error != null) {
      Throwable e = error;
      error = null;
      throw new IllegalStateException("the snapshot client failed", e);
    }
  }

  private void loop(Random random) {
    try {
      while (running) {
        ServiceProcess.Incarnation inc = service.current();
        if (!inc.ready) {
          Thread.sleep(5);
          continue;
        }
        Thread.sleep(20 + random.nextInt(180));
        ImageModel image = workload.writable.get(random.nextInt(workload.writable.size()));
        List<Snap> deletable = new ArrayList<>();
        int present;
        synchronized (this) {
          List<Snap> all = snapshots.computeIfAbsent(image, k -> new ArrayList<>());
          present = all.size();
          for (Snap s : all) {
            if (s.created == ImageModel.Outcome.ACKED && s.deleted == null) {
              deletable.add(s);
            }
          }
        }
        if (present < maxPerImage && (deletable.isEmpty() || random.nextInt(100) < 60)) {
          take(inc, image);
        } else if (!deletable.isEmpty()) {
          delete(inc, deletable, random.nextInt(deletable.size()));
        }
      }
    } catch (Throwable e) {
      error = e;
    }
  }

  private void take(ServiceProcess.Incarnation inc, ImageModel image) throws InterruptedException {
    Snap s = new Snap("s" + names.incrementAndGet(), image, inc);
    int present;
    synchronized (this) {
      List<Snap> all = snapshots.get(image);
      all.add(s);
      present = all.size();
    }
    ImageModel.Outcome outcome;
    try {
      HttpResponse<String> r =
          http.send(
              HttpRequest.newBuilder(inc.base.resolve("api/v1/images/" + image.name + "/snapshots"))
                  .timeout(requestTimeout)
                  .header("Content-Type", "application/json")
                  .POST(HttpRequest.BodyPublishers.ofString("{\"name\":\"" + s.name + "\"}"))
                  .build(),
              HttpResponse.BodyHandlers.ofString());
      if (r.statusCode() == 201) {
        s.answered = Ticks.next();
        outcome = ImageModel.Outcome.ACKED;
        image.flushed(new ImageModel.Flush(inc, s.requested, true));
      } else {
        outcome = ImageModel.Outcome.FAILED;
        workload.unexpected(inc, "snapshot " + s.name + " of " + image.name, r);
      }
    } catch (IOException e) {
      outcome = ImageModel.Outcome.UNKNOWN;
    }
    s.created = outcome;
    synchronized (figures) {
      figures.snapshotsRequested++;
      figures.snapshotsMostAlive = Math.max(figures.snapshotsMostAlive, present);
      switch (outcome) {
        case ACKED -> figures.snapshotsCreated++;
        case UNKNOWN -> figures.snapshotsUnknown++;
        default -> {}
      }
    }
  }

  private void delete(ServiceProcess.Incarnation inc, List<Snap> deletable, int pick)
      throws InterruptedException {
    Snap s = deletable.get(pick);
    s.deleted = ImageModel.Outcome.PENDING;
    ImageModel.Outcome outcome;
    try {
      HttpResponse<String> r =
          http.send(
              HttpRequest.newBuilder(
                      inc.base.resolve("api/v1/images/" + s.image.name + "/snapshots/" + s.name))
                  .timeout(requestTimeout)
                  .DELETE()
                  .build(),
              HttpResponse.BodyHandlers.ofString());
      if (r.statusCode() == 204) {
        outcome = ImageModel.Outcome.ACKED;
      } else {
        outcome = ImageModel.Outcome.FAILED;
        workload.unexpected(inc, "deletion of snapshot " + s.name + " of " + s.image.name, r);
      }
    } catch (IOException e) {
      outcome = ImageModel.Outcome.UNKNOWN;
    }
    s.deleted = outcome;
    synchronized (figures) {
      figures.snapshotDeletes++;
      if (pick > 0) {
        figures.snapshotDeletesNotOldest++;
      }
      switch (outcome) {
        case ACKED -> figures.snapshotDeletesAcked++;
        case UNKNOWN -> figures.snapshotDeletesUnknown++;
        default -> {}
      }
    }
  }

  // ---- after a restart ----

  /**
   * Checks every image's list of snapshots against the model and reads every listed snapshot in
   * full. The client must be stopped, and the images not yet verified for this epoch.
   */
  synchronized void verify(Random random) throws IOException, InterruptedException {
    for (ImageModel image : workload.writable) {
      List<Snap> all = snapshots.computeIfAbsent(image, k -> new ArrayList<>());
      Set<String> goneHere = gone.computeIfAbsent(image.name, k -> new HashSet<>());
      Set<String> listed = list(image);
      List<Snap> kept = new ArrayList<>();
      for (Snap s : all) {
        boolean present = listed.remove(s.name);
        boolean mustExist = s.created == ImageModel.Outcome.ACKED && s.deleted == null;
        boolean mustBeGone = s.deleted == ImageModel.Outcome.ACKED;
        if (mustExist && !present) {
          synchronized (figures) {
            figures.snapshotsLost++;
            figures.fail(
                "generation "
                    + service.current().generation
                    + ": snapshot "
                    + image.name
                    + "@"
                    + s.name
                    + ", created (201) in generation "
                    + s.incarnation.generation
                    + ", is not listed after the restart");
          }
        }
        if (mustBeGone && present) {
          resurrected(image, s.name, "deleted with 204");
        }
        if (!present || mustBeGone) {
          if (mustBeGone) {
            expectGone(image, s.name);
          }
          goneHere.add(s.name);
          continue;
        }
        // Listed, and allowed to be: it exists from now on, whatever its requests' outcomes.
        synchronized (figures) {
          if (s.created == ImageModel.Outcome.UNKNOWN) {
            figures.snapshotsUnknownFound++;
          }
          if (s.deleted == ImageModel.Outcome.UNKNOWN) {
            figures.snapshotDeletesUnknownSurvived++;
          }
        }
        if (s.created != ImageModel.Outcome.ACKED) {
          s.answered = s.takenBy();
          s.created = ImageModel.Outcome.ACKED;
        }
        s.deleted = null;
        verifyContent(image, s, random);
        kept.add(s);
      }
      for (String name : listed) {
        resurrected(image, name, goneHere.contains(name) ? "known to be gone" : "never asked for");
      }
      all.clear();
      all.addAll(kept);
    }
  }

  private void resurrected(ImageModel image, String name, String why) {
    synchronized (figures) {
      figures.snapshotsResurrected++;
      figures.fail(
          "generation "
              + service.current().generation
              + ": snapshot "
              + image.name
              + "@"
              + name
              + " is listed after the restart, but was "
              + why);
    }
  }

  private void expectGone(ImageModel image, String name) throws IOException, InterruptedException {
    HttpResponse<String> r =
        http.send(
            request("api/v1/images/" + image.name + "/snapshots/" + name).GET().build(),
            HttpResponse.BodyHandlers.ofString());
    synchronized (figures) {
      if (r.statusCode() == 404) {
        figures.snapshotsConfirmedGone++;
      } else {
        figures.snapshotsResurrected++;
        figures.fail(
            "snapshot "
                + image.name
                + "@"
                + name
                + ", deleted with 204, answers "
                + r.statusCode()
                + " "
                + r.body());
      }
    }
  }

  private Set<String> list(ImageModel image) throws IOException, InterruptedException {
    HttpResponse<String> r =
        http.send(
            request("api/v1/images/" + image.name + "/snapshots").GET().build(),
            HttpResponse.BodyHandlers.ofString());
    if (r.statusCode() != 200) {
      throw new IllegalStateException(
          "listing the snapshots of " + image.name + " answered " + r.statusCode() + r.body());
    }
    Set<String> names = new HashSet<>();
    Matcher m = NAME.matcher(r.body());
    while (m.find()) {
      names.add(m.group(1));
    }
    return names;
  }

  private void verifyContent(ImageModel image, Snap s, Random random)
      throws IOException, InterruptedException {
    boolean first = s.content == null;
    // Later reads go in ranges of random lengths, so that the ranged path is judged too.
    try (InputStream in = first ? readWhole(image, s) : readInRanges(image, s, random)) {
      ImageModel.Verdict v;
      if (first) {
        long[] observed = new long[(int) (image.sizeBytes / SectorStamp.SECTOR_BYTES)];
        v = image.verifySnapshot(s.name, s.incarnation, s.requested, s.takenBy(), in, observed);
        s.content = observed;
      } else {
        v = image.verifyUnchanged(s.name, s.content, in);
      }
      figures.addSnapshot(v, first);
    }
  }

  private InputStream readWhole(ImageModel image, Snap s) throws IOException, InterruptedException {
    HttpResponse<InputStream> r =
        http.send(
            request(dataPath(image, s)).GET().build(), HttpResponse.BodyHandlers.ofInputStream());
    if (r.statusCode() != 200) {
      String body;
      try (InputStream in = r.body()) {
        body = new String(in.readAllBytes(), StandardCharsets.UTF_8);
      }
      throw new IllegalStateException(
          "GET " + image.name + "@" + s.name + " answered " + r.statusCode() + ": " + body);
    }
    return r.body();
  }

  private InputStream readInRanges(ImageModel image, Snap s, Random random)
      throws IOException, InterruptedException {
    ByteArrayOutputStream all = new ByteArrayOutputStream((int) image.sizeBytes);
    long at = 0;
    while (at < image.sizeBytes) {
      long length =
          Math.min(
              image.sizeBytes - at, SectorStamp.SECTOR_BYTES * (1L + random.nextInt(16 << 10)));
      HttpResponse<byte[]> r =
          http.send(
              request(dataPath(image, s))
                  .header("Range", "bytes=" + at + "-" + (at + length - 1))
                  .GET()
                  .build(),
              HttpResponse.BodyHandlers.ofByteArray());
      if (r.statusCode() != 206 || r.body().length != length) {
        throw new IllegalStateException(
            "GET "
                + image.name
                + "@"
                + s.name
                + " bytes "
                + at
                + "+"
                + length
                + " answered "
                + r.statusCode()
                + " with "
                + r.body().length
                + " bytes");
      }
      all.write(r.body());
      at += length;
    }
    return new ByteArrayInputStream(all.toByteArray());
  }

  private static String dataPath(ImageModel image, Snap s) {
    return "api/v1/images/" + image.name + "/snapshots/" + s.name + "/data";
  }

  private HttpRequest.Builder request(String path) {
    return HttpRequest.newBuilder(service.current().base.resolve(path))
        .timeout(Duration.ofSeconds(120));
  }
}
