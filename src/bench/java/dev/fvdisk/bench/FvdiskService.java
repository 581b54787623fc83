package dev.fvdisk.bench;

import dev.fvdisk.FvdiskApplication;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.boot.thread.Threading;
import org.springframework.context.ConfigurableApplicationContext;

/**
 * The fvdisk service started in the harness's JVM on a free loopback port, with its embedded
 * defaults and a scratch data directory, plus the few REST calls the harness needs to lay out its
 * images. Everything the benchmark measures goes through wrk or NBD, not through this client.
 *
 * <p>On request it also opens the service's data port ({@code fvdisk.http-data.*}), its second HTTP
 * listener outside Tomcat that answers only {@code GET} and {@code HEAD} of an image's data.
 */
final class FvdiskService implements AutoCloseable {

  private final ConfigurableApplicationContext context;
  private final HttpClient client =
      HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
  final int port;

  /** The loopback port of the service's data port, or -1 when it was started without one. */
  final int dataPort;

  private FvdiskService(ConfigurableApplicationContext context, int port, int dataPort) {
    this.context = context;
    this.port = port;
    this.dataPort = dataPort;
  }

  /** The service without its data port. */
  static FvdiskService start(Path dataDir, String... more) {
    return start(dataDir, false, more);
  }

  /**
   * The service, with {@code withDataPort} also its data port, on a loopback port that was free
   * just before.
   */
  static FvdiskService start(Path dataDir, boolean withDataPort, String... more) {
    java.util.List<String> args =
        new java.util.ArrayList<>(
            java.util.List.of(
                "--server.port=0",
                "--fvdisk.nbd.port=0",
                "--server.address=127.0.0.1",
                "--fvdisk.data-dir=" + dataDir.toAbsolutePath(),
                "--spring.main.banner-mode=off",
                "--logging.level.root=WARN"));
    // The harness chooses the data port rather than letting the listener take any free one, so
    // that it needs nothing from the service to learn which port that is.
    int dataPort = withDataPort ? freeLoopbackPort() : -1;
    if (withDataPort) {
      args.add("--fvdisk.http-data.enabled=true");
      args.add("--fvdisk.http-data.port=" + dataPort);
    }
    args.addAll(java.util.List.of(more));
    ConfigurableApplicationContext context =
        // Command-line arguments, because they take precedence over application.properties.
        new SpringApplicationBuilder(FvdiskApplication.class).run(args.toArray(String[]::new));
    Integer port = context.getEnvironment().getProperty("local.server.port", Integer.class);
    if (port == null) {
      context.close();
      throw new IllegalStateException("the service did not report its port");
    }
    if (withDataPort && !accepts(dataPort)) {
      // Said here, rather than as refused connections in the first run against it.
      context.close();
      throw new IllegalStateException(
          "the service started but does not listen on its data port "
              + dataPort
              + " (fvdisk.http-data.enabled=true)");
    }
    return new FvdiskService(context, port, dataPort);
  }

  /**
   * A port nothing listened on at 127.0.0.1 a moment ago, the data port's default address. Another
   * process may take it before the service binds it; then the service fails to start and says so.
   */
  private static int freeLoopbackPort() {
    try (ServerSocket socket = new ServerSocket()) {
      socket.bind(new InetSocketAddress("127.0.0.1", 0));
      return socket.getLocalPort();
    } catch (IOException e) {
      throw new UncheckedIOException("no free loopback port for the data port", e);
    }
  }

  /** Whether something accepts connections on {@code port} of 127.0.0.1. */
  private static boolean accepts(int port) {
    try (Socket socket = new Socket()) {
      socket.connect(new InetSocketAddress("127.0.0.1", port), 5_000);
      return true;
    } catch (IOException e) {
      return false;
    }
  }

  /**
   * The loopback port the service's NBD listener took ({@code fvdisk.nbd.port=0} lets it choose a
   * free one).
   */
  int nbdPort() {
    int nbd = context.getBean(dev.fvdisk.config.NbdListener.class).port();
    if (nbd < 0) {
      throw new IllegalStateException("the service's NBD listener is not running");
    }
    return nbd;
  }

  /** Where the service runs its requests, as its configuration and the JVM decide. */
  String requestThreads() {
    return Threading.VIRTUAL.isActive(context.getEnvironment())
        ? "requests on virtual threads"
        : "requests on Tomcat's pool of platform threads";
  }

  /**
   * CPU time of this whole JVM so far. The harness thread only waits for wrk while a run lasts, so
   * during a run this is the service's.
   */
  long cpuNanos() {
    return ((com.sun.management.OperatingSystemMXBean)
            java.lang.management.ManagementFactory.getOperatingSystemMXBean())
        .getProcessCpuTime();
  }

  String dataPath(String image) {
    return "/api/v1/images/" + image + "/data";
  }

  void create(String image, long sizeBytes) throws IOException, InterruptedException {
    send(
        HttpRequest.newBuilder(uri("/api/v1/images"))
            .header("Content-Type", "application/json")
            .POST(
                HttpRequest.BodyPublishers.ofString(
                    "{\"name\":\"" + image + "\",\"sizeBytes\":" + sizeBytes + "}")),
        201);
  }

  void delete(String image) throws IOException, InterruptedException {
    send(HttpRequest.newBuilder(uri("/api/v1/images/" + image)).DELETE(), 204);
  }

  void write(String image, long offsetBytes, byte[] data, boolean flush)
      throws IOException, InterruptedException {
    send(
        HttpRequest.newBuilder(uri(dataPath(image) + (flush ? "" : "?flush=false")))
            .header("Content-Type", "application/octet-stream")
            .header(
                "Content-Range",
                "bytes " + offsetBytes + "-" + (offsetBytes + data.length - 1) + "/*")
            .PUT(HttpRequest.BodyPublishers.ofByteArray(data)),
        204);
  }

  void flush(String image) throws IOException, InterruptedException {
    send(
        HttpRequest.newBuilder(uri(dataPath(image)))
            .header("Content-Type", "application/json")
            .method("PATCH", HttpRequest.BodyPublishers.ofString("{\"op\":\"flush\"}")),
        204);
  }

  /** A ranged read from a server on {@code port}, which must answer 206 with exactly the range. */
  byte[] readRange(int port, String path, long offsetBytes, int length)
      throws IOException, InterruptedException {
    HttpResponse<byte[]> answer =
        client.send(
            HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
                .header("Range", "bytes=" + offsetBytes + "-" + (offsetBytes + length - 1))
                .timeout(Duration.ofSeconds(60))
                .build(),
            HttpResponse.BodyHandlers.ofByteArray());
    if (answer.statusCode() != 206 || answer.body().length != length) {
      throw new IOException(
          "GET "
              + path
              + " answered "
              + answer.statusCode()
              + " with "
              + answer.body().length
              + " bytes, expected 206 with "
              + length);
    }
    return answer.body();
  }

  /** A ranged read of an image from this service. */
  byte[] read(String image, long offsetBytes, int length) throws IOException, InterruptedException {
    return readRange(port, dataPath(image), offsetBytes, length);
  }

  /**
   * Checks that the service, on {@code servicePort} (its main port or its data port), and nginx
   * serve {@code expected} at {@code offsetBytes}.
   */
  void verifySame(
      int servicePort,
      int nginxPort,
      String nginxPath,
      String image,
      long offsetBytes,
      byte[] expected)
      throws IOException, InterruptedException {
    byte[] fromService = readRange(servicePort, dataPath(image), offsetBytes, expected.length);
    byte[] fromNginx = readRange(nginxPort, nginxPath, offsetBytes, expected.length);
    if (!Arrays.equals(fromService, expected) || !Arrays.equals(fromNginx, expected)) {
      throw new IOException(
          "the service on port "
              + servicePort
              + " and nginx do not serve the same bytes at "
              + offsetBytes);
    }
  }

  private URI uri(String path) {
    return URI.create("http://127.0.0.1:" + port + path);
  }

  private void send(HttpRequest.Builder request, int expectedStatus)
      throws IOException, InterruptedException {
    HttpResponse<String> answer =
        client.send(
            request.timeout(Duration.ofSeconds(120)).build(), HttpResponse.BodyHandlers.ofString());
    if (answer.statusCode() != expectedStatus) {
      throw new IOException(
          request.build().method()
              + " "
              + request.build().uri().getPath()
              + " answered "
              + answer.statusCode()
              + ": "
              + answer.body());
    }
  }

  @Override
  public void close() {
    context.close();
  }
}
