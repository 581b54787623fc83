package dev.fvdisk.bench;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * nginx from the distribution, serving one directory on loopback with the settings a file server
 * would use for large static files: {@code sendfile}, no access log, keep-alive connections. The
 * harness starts it in the foreground as a child process and stops it at the end.
 */
final class NginxServer implements AutoCloseable {

  /** Answers 204 to anything, reading and discarding a request body. */
  static final String DISCARD_PATH = "/discard";

  private final Process process;
  final int port;

  private NginxServer(Process process, int port) {
    this.process = process;
    this.port = port;
  }

  static boolean available() {
    return executable() != null;
  }

  private static String executable() {
    for (String candidate : List.of("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx")) {
      if (Files.isExecutable(Path.of(candidate))) {
        return candidate;
      }
    }
    return null;
  }

  static String version() {
    try {
      Process p = new ProcessBuilder(executable(), "-v").redirectErrorStream(true).start();
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
      p.waitFor(10, TimeUnit.SECONDS);
      return out.replace("nginx version: ", "");
    } catch (IOException e) {
      return "?";
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return "?";
    }
  }

  /** Starts nginx serving the files in {@code root} and waits until it accepts connections. */
  static NginxServer start(Path prefix, Path root) throws IOException, InterruptedException {
    Files.createDirectories(prefix.resolve("temp"));
    int port = freePort();
    Path conf = prefix.resolve("nginx.conf");
    Path temp = prefix.resolve("temp").toAbsolutePath();
    // "user root" only takes effect when the harness runs as root, where nginx would otherwise
    // switch its workers to nobody, who may not read the scratch directory.
    Files.writeString(
        conf,
        String.join(
            "\n",
            "user root;",
            "worker_processes auto;",
            "pid " + prefix.toAbsolutePath().resolve("nginx.pid") + ";",
            "error_log " + prefix.toAbsolutePath().resolve("error.log") + " warn;",
            "events { worker_connections 1024; }",
            "http {",
            "  access_log off;",
            "  sendfile on;",
            "  tcp_nopush on;",
            "  keepalive_requests 1000;",
            "  keepalive_timeout 30s;",
            "  default_type application/octet-stream;",
            "  client_body_temp_path " + temp + "/body;",
            "  proxy_temp_path " + temp + "/proxy;",
            "  fastcgi_temp_path " + temp + "/fastcgi;",
            "  uwsgi_temp_path " + temp + "/uwsgi;",
            "  scgi_temp_path " + temp + "/scgi;",
            "  server {",
            "    listen 127.0.0.1:" + port + ";",
            "    root " + root.toAbsolutePath() + ";",
            "    location = " + DISCARD_PATH + " {",
            "      client_max_body_size 16m;",
            "      return 204;",
            "    }",
            "  }",
            "}",
            ""),
        StandardCharsets.UTF_8);
    Process process =
        new ProcessBuilder(
                executable(),
                "-p",
                prefix.toAbsolutePath().toString(),
                "-c",
                conf.toAbsolutePath().toString(),
                "-g",
                "daemon off;")
            .redirectErrorStream(true)
            .redirectOutput(prefix.resolve("nginx.out").toFile())
            .start();
    NginxServer server = new NginxServer(process, port);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (true) {
      try (Socket socket = new Socket("127.0.0.1", port)) {
        return server;
      } catch (IOException notYet) {
        if (!process.isAlive() || System.nanoTime() > deadline) {
          server.close();
          throw new IOException(
              "nginx did not start: " + Files.readString(prefix.resolve("nginx.out")));
        }
        Thread.sleep(50);
      }
    }
  }

  /** CPU time nginx's master and workers have used so far, from /proc. */
  long cpuNanos() {
    long ticks = 0;
    List<ProcessHandle> processes = new java.util.ArrayList<>();
    processes.add(process.toHandle());
    process.descendants().forEach(processes::add);
    for (ProcessHandle handle : processes) {
      try {
        String stat = Files.readString(Path.of("/proc", Long.toString(handle.pid()), "stat"));
        // Fields after the command name, which is in parentheses and may hold spaces.
        String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        ticks += Long.parseLong(fields[11]) + Long.parseLong(fields[12]);
      } catch (IOException | RuntimeException gone) {
        // A worker that exited meanwhile; nginx does not restart workers during a run.
      }
    }
    return ticks * (1_000_000_000L / CLOCK_TICKS_PER_SECOND);
  }

  /** USER_HZ, which Linux fixes at 100 on every architecture the harness runs on. */
  private static final long CLOCK_TICKS_PER_SECOND = 100;

  static int freePort() throws IOException {
    try (ServerSocket socket = new ServerSocket(0)) {
      return socket.getLocalPort();
    }
  }

  @Override
  public void close() throws InterruptedException {
    // SIGTERM is nginx's fast shutdown.
    process.destroy();
    if (!process.waitFor(10, TimeUnit.SECONDS)) {
      process.destroyForcibly().waitFor();
    }
  }
}
