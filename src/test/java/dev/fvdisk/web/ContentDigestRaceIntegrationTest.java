package dev.fvdisk.web;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

/**
 * Digest reads racing writers of the same range: a read's digest and its body come from two reads,
 * and a write between them must never give a client a complete body unlike its {@code
 * Content-Digest}; such an answer is cut short instead. The server streams through 64 KiB buffers,
 * so the 1 MiB range takes sixteen of them and is read twice (a range that fits in one buffer is
 * read once, and could not show the race).
 */
class ContentDigestRaceIntegrationTest extends ApiTestSupport {

  private static final Path RACE_DIR = raceDir();
  private static final int READS = 200;
  private static final int READERS = 4;
  private static final int WRITERS = 2;
  private static final int RANGE_BYTES = 1 << 20;
  // Not on a chunk boundary, so the range spans two chunks of every buffer's worth.
  private static final long OFFSET_BYTES = MIB + 12_345;

  private static final HttpClient HTTP =
      HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

  @DynamicPropertySource
  static void smallBuffers(DynamicPropertyRegistry registry) {
    registry.add("fvdisk.test.data-dir", RACE_DIR::toString);
    registry.add("fvdisk.io-buffer-size", () -> "64KB");
  }

  private static Path raceDir() {
    try {
      return Files.createTempDirectory(
          Files.createDirectories(Path.of("target", "it-data")), "digest-race-");
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  @Test
  void every_complete_answer_matches_its_digest_and_the_others_are_cut_short() throws Exception {
    String name = createImage("digest-race", 4 * MIB);
    assertThat(write(name, 0).statusCode()).isEqualTo(204);
    AtomicBoolean racing = new AtomicBoolean(true);
    AtomicInteger started = new AtomicInteger();
    AtomicInteger complete = new AtomicInteger();
    AtomicInteger cutShort = new AtomicInteger();
    AtomicInteger mismatched = new AtomicInteger();
    AtomicInteger writes = new AtomicInteger();
    ExecutorService threads = Executors.newFixedThreadPool(READERS + WRITERS);
    try {
      List<Future<?>> writers = new ArrayList<>();
      for (int w = 0; w < WRITERS; w++) {
        int writer = w;
        writers.add(
            threads.submit(
                () -> {
                  for (int generation = 1; racing.get(); generation++) {
                    HttpResponse<String> answer = write(name, writer * 100 + generation % 100);
                    assertThat(answer.statusCode()).as(answer.body()).isEqualTo(204);
                    writes.incrementAndGet();
                  }
                  return null;
                }));
      }
      List<Future<?>> readers = new ArrayList<>();
      for (int r = 0; r < READERS; r++) {
        readers.add(
            threads.submit(
                () -> {
                  while (started.getAndIncrement() < READS) {
                    switch (readWithDigest(name)) {
                      case COMPLETE -> complete.incrementAndGet();
                      case CUT_SHORT -> cutShort.incrementAndGet();
                      case MISMATCHED -> mismatched.incrementAndGet();
                    }
                  }
                  return null;
                }));
      }
      for (Future<?> reader : readers) {
        reader.get(5, TimeUnit.MINUTES);
      }
      racing.set(false);
      for (Future<?> writer : writers) {
        writer.get(1, TimeUnit.MINUTES);
      }
    } finally {
      racing.set(false);
      threads.shutdownNow();
    }
    System.out.printf(
        "Digest reads racing writes: %d complete and matching, %d cut short, %d complete but"
            + " mismatched, during %d writes of the range%n",
        complete.get(), cutShort.get(), mismatched.get(), writes.get());
    assertThat(mismatched).hasValue(0);
    assertThat(complete.get() + cutShort.get()).isEqualTo(READS);
    assertThat(complete.get()).as("complete answers").isPositive();
    assertThat(writes.get()).as("writes during the reads").isPositive();
  }

  private enum Outcome {
    COMPLETE,
    CUT_SHORT,
    MISMATCHED
  }

  private Outcome readWithDigest(String name) throws InterruptedException {
    HttpRequest request =
        HttpRequest.newBuilder(dataUri(name))
            .header("Range", "bytes=" + OFFSET_BYTES + "-" + (OFFSET_BYTES + RANGE_BYTES - 1))
            .header("Want-Content-Digest", "sha-256=1")
            .timeout(Duration.ofMinutes(1))
            .build();
    HttpResponse<byte[]> answer;
    try {
      answer = HTTP.send(request, HttpResponse.BodyHandlers.ofByteArray());
    } catch (IOException brokenOff) {
      return Outcome.CUT_SHORT;
    }
    assertThat(answer.statusCode()).isEqualTo(206);
    if (answer.body().length < RANGE_BYTES) {
      return Outcome.CUT_SHORT;
    }
    String expected = ContentDigestIntegrationTest.digestField("sha-256", answer.body());
    return answer.headers().firstValue("Content-Digest").orElse("").equals(expected)
        ? Outcome.COMPLETE
        : Outcome.MISMATCHED;
  }

  /** The whole range with one pattern, without waiting for durability. */
  private HttpResponse<String> write(String name, int seed)
      throws IOException, InterruptedException {
    HttpRequest request =
        HttpRequest.newBuilder(URI.create(dataUri(name) + "?flush=false"))
            .header("Content-Type", "application/octet-stream")
            .header("Content-Range", contentRange(OFFSET_BYTES, RANGE_BYTES))
            .PUT(HttpRequest.BodyPublishers.ofByteArray(pattern(RANGE_BYTES, seed)))
            .timeout(Duration.ofMinutes(1))
            .build();
    return HTTP.send(request, HttpResponse.BodyHandlers.ofString());
  }

  private URI dataUri(String name) {
    return URI.create("http://127.0.0.1:" + port + IMAGES + "/" + name + "/data");
  }
}
