package dev.fvdisk.reliability;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfEnvironmentVariable;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two service processes on one bucket prefix, each its own node: A owns an image and writes; A is
 * stopped (SIGSTOP); B takes the image over once A's lease ran out and writes; A is continued
 * (SIGCONT). A's next flush and write fail (503, or a 307 to B once A noticed), A then sends
 * clients to B, and every read through B shows B's writes and A's acknowledged ones only: not the
 * write A took without a flush before it stopped.
 *
 * <p>Runs in the suite's pass on the bucket ({@code FVDISK_STORAGE_BACKEND=s3}), whose environment
 * names the store; the two processes share a prefix of their own.
 */
@EnabledIfEnvironmentVariable(named = "FVDISK_STORAGE_BACKEND", matches = "(?i)s3")
class FailoverIntegrationTest {

  private static final int LEASE_SECONDS = 3;
  private static final String IMAGE = "api/v1/images/vm";

  private final HttpClient http =
      HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build(); // no redirects

  @Test
  void a_stopped_owner_is_taken_over_and_fenced_and_its_unflushed_write_never_appears(
      @TempDir Path dir) throws Exception {
    List<String> shared =
        List.of(
            "--fvdisk.storage.s3.prefix=failover-" + UUID.randomUUID() + "/",
            "--fvdisk.storage.s3.lease-seconds=" + LEASE_SECONDS,
            "--fvdisk.advertised-url=http://127.0.0.1:${server.port}");
    try (ServiceProcess a = new ServiceProcess(dir.resolve("a"), with(shared, "a"));
        ServiceProcess b = new ServiceProcess(dir.resolve("b"), with(shared, "b"))) {
      a.start();
      b.start();
      URI atA = a.current().base;
      URI atB = b.current().base;

      assertThat(
              send(HttpRequest.newBuilder(atA.resolve("api/v1/images"))
                      .header("Content-Type", "application/json")
                      .POST(
                          HttpRequest.BodyPublishers.ofString(
                              "{\"name\":\"vm\",\"sizeBytes\":1048576}")))
                  .statusCode())
          .isEqualTo(201);
      assertThat(write(atA, 0, filled(4096, 1), true).statusCode()).isEqualTo(204);

      HttpResponse<byte[]> sent = send(HttpRequest.newBuilder(atB.resolve(IMAGE)).GET());
      assertThat(sent.statusCode()).isEqualTo(307);
      assertThat(sent.headers().firstValue("Location"))
          .hasValue(atA.resolve("/" + IMAGE).toString());
      assertThat(text(send(HttpRequest.newBuilder(atB.resolve("api/v1/images")).GET())))
          .as("B lists the image A serves")
          .contains("\"name\":\"vm\"");

      // Taken by A without a flush: lost when A loses the image.
      assertThat(write(atA, 4096, filled(4096, 2), false).statusCode()).isEqualTo(204);

      a.pause();
      try {
        Thread.sleep(LEASE_SECONDS * 1000L + 500);
        // B takes the image over once A's lease ran out by B's clock.
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        int status;
        do {
          status = write(atB, 8192, filled(4096, 3), true).statusCode();
          if (status == 204) {
            break;
          }
          assertThat(status).as("B before the lease ran out").isEqualTo(307);
          Thread.sleep(200);
        } while (System.nanoTime() < deadline);
        assertThat(status).as("B's durable write after the takeover").isEqualTo(204);
      } finally {
        a.resume();
      }

      HttpResponse<byte[]> flush =
          send(
              HttpRequest.newBuilder(atA.resolve(IMAGE + "/data"))
                  .header("Content-Type", "application/json")
                  .method("PATCH", HttpRequest.BodyPublishers.ofString("{\"op\":\"flush\"}")));
      assertThat(flush.statusCode()).as("A's flush after it woke").isIn(503, 307);
      if (flush.statusCode() == 307) {
        assertThat(flush.headers().firstValue("Location").orElseThrow()).startsWith(atB.toString());
      }
      assertThat(write(atA, 12288, filled(4096, 4), true).statusCode())
          .as("A's write after it woke")
          .isIn(503, 307);
      HttpResponse<byte[]> redirected = send(HttpRequest.newBuilder(atA.resolve(IMAGE)).GET());
      assertThat(redirected.statusCode()).isEqualTo(307);
      assertThat(redirected.headers().firstValue("Location"))
          .hasValue(atB.resolve("/" + IMAGE).toString());

      HttpResponse<byte[]> read =
          send(
              HttpRequest.newBuilder(atB.resolve(IMAGE + "/data"))
                  .header("Range", "bytes=0-16383")
                  .GET());
      assertThat(read.statusCode()).isEqualTo(206);
      byte[] disk = read.body();
      assertThat(Arrays.copyOfRange(disk, 0, 4096)).isEqualTo(filled(4096, 1));
      assertThat(Arrays.copyOfRange(disk, 4096, 8192))
          .as("A's write no flush covered")
          .isEqualTo(new byte[4096]);
      assertThat(Arrays.copyOfRange(disk, 8192, 12288)).isEqualTo(filled(4096, 3));
      assertThat(Arrays.copyOfRange(disk, 12288, 16384))
          .as("A's write after it was fenced")
          .isEqualTo(new byte[4096]);
      assertThat(a.firstLoggedError())
          .as("errors A logged")
          .isEqualTo("(no error in the service log)");
      assertThat(b.firstLoggedError())
          .as("errors B logged")
          .isEqualTo("(no error in the service log)");
    }
  }

  private static List<String> with(List<String> shared, String node) {
    return java.util.stream.Stream.concat(
            shared.stream(), java.util.stream.Stream.of("--fvdisk.node-id=" + node))
        .toList();
  }

  private HttpResponse<byte[]> write(URI base, long offset, byte[] data, boolean durable)
      throws Exception {
    return send(
        HttpRequest.newBuilder(base.resolve(IMAGE + "/data" + (durable ? "" : "?flush=false")))
            .header("Content-Type", "application/octet-stream")
            .header("Content-Range", "bytes " + offset + "-" + (offset + data.length - 1) + "/*")
            .PUT(HttpRequest.BodyPublishers.ofByteArray(data)));
  }

  private HttpResponse<byte[]> send(HttpRequest.Builder request) throws Exception {
    return http.send(
        request.timeout(Duration.ofSeconds(30)).build(), HttpResponse.BodyHandlers.ofByteArray());
  }

  private static String text(HttpResponse<byte[]> response) {
    return new String(response.body(), java.nio.charset.StandardCharsets.UTF_8);
  }

  private static byte[] filled(int n, int value) {
    byte[] b = new byte[n];
    Arrays.fill(b, (byte) value);
    return b;
  }
}
