package dev.fvdisk.web;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.InputStream;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.stream.Stream;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Bodies stream in bounded memory: the packaged server runs in its own JVM with a 64 MiB heap and
 * moves 768 MiB up and 1 GiB down. Holding either body in memory would fail with an
 * OutOfMemoryError. Needs the jar that {@code package} builds before failsafe runs.
 */
class StreamingIntegrationTest {

  private static final long MIB = 1 << 20;
  private static final long DISK_BYTES = 1024 * MIB;
  private static final long UPLOAD_BYTES = 768 * MIB;
  private static final String HEAP = "-Xmx64m";

  private Process server;
  private Path log;
  private Path dataDir;
  private int port;
  private final HttpClient client =
      HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

  @BeforeEach
  void startServer() throws Exception {
    Path jar;
    try (Stream<Path> files = Files.list(Path.of("target"))) {
      jar =
          files
              .filter(p -> p.getFileName().toString().matches("fvdisk-.*\\.jar"))
              .findFirst()
              .orElse(null);
    }
    assumeTrue(jar != null, "the packaged jar is missing; run ./mvnw verify");
    dataDir =
        Files.createTempDirectory(
            Files.createDirectories(Path.of("target", "it-data")), "streaming-");
    log = dataDir.resolveSibling(dataDir.getFileName() + ".log");
    try (ServerSocket socket = new ServerSocket(0)) {
      port = socket.getLocalPort();
    }
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    server =
        new ProcessBuilder(
                List.of(
                    java,
                    HEAP,
                    "-XX:+ExitOnOutOfMemoryError",
                    "-jar",
                    jar.toString(),
                    "--server.port=" + port,
                    "--fvdisk.nbd.port=0",
                    "--fvdisk.data-dir=" + dataDir))
            .redirectErrorStream(true)
            .redirectOutput(log.toFile())
            .start();
    long deadline = System.nanoTime() + Duration.ofSeconds(180).toNanos();
    while (true) {
      assertThat(server.isAlive()).as("server exited; see " + log).isTrue();
      try {
        HttpResponse<String> health =
            client.send(
                HttpRequest.newBuilder(uri("/actuator/health")).build(),
                HttpResponse.BodyHandlers.ofString());
        if (health.statusCode() == 200) {
          break;
        }
      } catch (IOException e) {
        // not listening yet
      }
      assertThat(System.nanoTime()).as("server did not start; see " + log).isLessThan(deadline);
      Thread.sleep(500);
    }
  }

  @AfterEach
  void stopServer() throws Exception {
    if (server != null) {
      server.destroy();
      if (!server.waitFor(30, java.util.concurrent.TimeUnit.SECONDS)) {
        server.destroyForcibly();
      }
    }
    // The upload leaves most of a GiB on disk; the log stays for a look after a failure.
    if (dataDir != null) {
      try (Stream<Path> files = Files.walk(dataDir)) {
        for (Path p : files.sorted(java.util.Comparator.reverseOrder()).toList()) {
          Files.deleteIfExists(p);
        }
      }
    }
  }

  private URI uri(String path) {
    return URI.create("http://localhost:" + port + path);
  }

  @Test
  void upload_and_download_far_larger_than_the_heap() throws Exception {
    HttpResponse<String> created =
        client.send(
            HttpRequest.newBuilder(uri("/api/v1/images"))
                .header("Content-Type", "application/json")
                .POST(
                    HttpRequest.BodyPublishers.ofString(
                        "{\"name\":\"big\",\"sizeBytes\":" + DISK_BYTES + "}"))
                .build(),
            HttpResponse.BodyHandlers.ofString());
    assertThat(created.statusCode()).as(created.body()).isEqualTo(201);

    long offset = 64 * MIB;
    CRC32C sent = new CRC32C();
    long startUpload = System.nanoTime();
    HttpResponse<String> put =
        client.send(
            HttpRequest.newBuilder(uri("/api/v1/images/big/data"))
                .header("Content-Type", "application/octet-stream")
                .header(
                    "Content-Range", "bytes " + offset + "-" + (offset + UPLOAD_BYTES - 1) + "/*")
                .PUT(
                    HttpRequest.BodyPublishers.fromPublisher(
                        HttpRequest.BodyPublishers.ofInputStream(
                            () -> new PatternStream(UPLOAD_BYTES, sent)),
                        UPLOAD_BYTES))
                .build(),
            HttpResponse.BodyHandlers.ofString());
    double uploadSeconds = (System.nanoTime() - startUpload) / 1e9;
    assertThat(put.statusCode()).as(put.body()).isEqualTo(204);

    long startDownload = System.nanoTime();
    HttpResponse<InputStream> get =
        client.send(
            HttpRequest.newBuilder(uri("/api/v1/images/big/data")).build(),
            HttpResponse.BodyHandlers.ofInputStream());
    assertThat(get.statusCode()).isEqualTo(200);
    assertThat(get.headers().firstValueAsLong("Content-Length")).hasValue(DISK_BYTES);
    CRC32C zerosBefore = new CRC32C();
    CRC32C received = new CRC32C();
    CRC32C zerosAfter = new CRC32C();
    long total;
    try (InputStream body = get.body()) {
      total = consume(body, offset, zerosBefore);
      total += consume(body, UPLOAD_BYTES, received);
      total += consume(body, DISK_BYTES - offset - UPLOAD_BYTES, zerosAfter);
      assertThat(body.read()).isEqualTo(-1);
    }
    double downloadSeconds = (System.nanoTime() - startDownload) / 1e9;
    assertThat(total).isEqualTo(DISK_BYTES);
    assertThat(received.getValue()).isEqualTo(sent.getValue());
    assertThat(zerosBefore.getValue()).isEqualTo(crcOfZeros(offset));
    assertThat(zerosAfter.getValue()).isEqualTo(crcOfZeros(DISK_BYTES - offset - UPLOAD_BYTES));
    assertThat(server.isAlive()).isTrue();
    System.out.printf(
        "streaming with %s: upload %d MiB in %.1f s (%.0f MiB/s), download %d MiB in %.1f s"
            + " (%.0f MiB/s)%n",
        HEAP,
        UPLOAD_BYTES / MIB,
        uploadSeconds,
        UPLOAD_BYTES / MIB / uploadSeconds,
        DISK_BYTES / MIB,
        downloadSeconds,
        DISK_BYTES / MIB / downloadSeconds);
  }

  private static long consume(InputStream in, long length, CRC32C crc) throws IOException {
    byte[] buffer = new byte[64 * 1024];
    long done = 0;
    while (done < length) {
      int n = in.read(buffer, 0, (int) Math.min(buffer.length, length - done));
      if (n < 0) {
        break;
      }
      crc.update(buffer, 0, n);
      done += n;
    }
    return done;
  }

  private static long crcOfZeros(long length) {
    CRC32C crc = new CRC32C();
    byte[] zeros = new byte[64 * 1024];
    for (long done = 0; done < length; done += zeros.length) {
      crc.update(zeros, 0, (int) Math.min(zeros.length, length - done));
    }
    return crc.getValue();
  }

  /** A body generated on the fly, never held whole; its checksum is kept as it is read. */
  private static final class PatternStream extends InputStream {
    private final long length;
    private final CRC32C crc;
    private long position;

    PatternStream(long length, CRC32C crc) {
      this.length = length;
      this.crc = crc;
    }

    @Override
    public int read() {
      byte[] one = new byte[1];
      return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
    }

    @Override
    public int read(byte[] b, int off, int len) {
      if (position >= length) {
        return -1;
      }
      int n = (int) Math.min(len, length - position);
      for (int i = 0; i < n; i++) {
        long p = position + i;
        b[off + i] = (byte) (p * 31 + (p >>> 13));
      }
      crc.update(b, off, n);
      position += n;
      return n;
    }
  }
}
