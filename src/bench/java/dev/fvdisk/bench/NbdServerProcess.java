package dev.fvdisk.bench;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * An NBD server the harness runs as a child process on a free loopback port: {@code nbdkit file} on
 * a raw file, or {@code qemu-nbd} on a qcow2 image. Started in the foreground, so the child is the
 * server and its PID is the one stopped; ready once an NBD handshake with it succeeds. A shutdown
 * hook stops it too, should the harness end without closing it.
 */
final class NbdServerProcess implements AutoCloseable {

  /** The export name qemu-nbd is given; nbdkit's file plugin ignores the name. */
  static final String EXPORT = "bench";

  private final Process process;
  private final Thread hook;
  private final String what;
  final int port;

  private NbdServerProcess(Process process, int port, String what) {
    this.process = process;
    this.port = port;
    this.what = what;
    this.hook = new Thread(process::destroyForcibly, "stop " + what);
    Runtime.getRuntime().addShutdownHook(hook);
  }

  static boolean nbdkitAvailable() {
    return commandWorks("nbdkit", "--version");
  }

  static boolean qemuNbdAvailable() {
    return commandWorks("qemu-nbd", "--version");
  }

  static String nbdkitVersion() {
    return firstLine("nbdkit", "--version");
  }

  static String qemuNbdVersion() {
    return firstLine("qemu-nbd", "--version");
  }

  /** {@code nbdkit file} serving {@code rawFile}, many connections at once, writes through. */
  static NbdServerProcess nbdkit(Path rawFile, Path logDirectory)
      throws IOException, InterruptedException {
    int port = NginxServer.freePort();
    return start(
        List.of(
            "nbdkit",
            "-f",
            "--exit-with-parent",
            "-i",
            "127.0.0.1",
            "-p",
            Integer.toString(port),
            "file",
            rawFile.toAbsolutePath().toString()),
        port,
        "nbdkit",
        logDirectory);
  }

  /**
   * {@code qemu-nbd} serving a qcow2 image under {@link #EXPORT}, persistent across connections,
   * with room for the latency client's connections, through the page cache as a VM host would have
   * it ({@code --cache=writeback}).
   */
  static NbdServerProcess qemuNbd(Path qcow2, Path logDirectory)
      throws IOException, InterruptedException {
    int port = NginxServer.freePort();
    return start(
        List.of(
            "qemu-nbd",
            "-f",
            "qcow2",
            "-x",
            EXPORT,
            "-b",
            "127.0.0.1",
            "-p",
            Integer.toString(port),
            "-t",
            "-e",
            "32",
            "--cache=writeback",
            qcow2.toAbsolutePath().toString()),
        port,
        "qemu-nbd",
        logDirectory);
  }

  private static NbdServerProcess start(
      List<String> command, int port, String what, Path logDirectory)
      throws IOException, InterruptedException {
    Files.createDirectories(logDirectory);
    Path log = logDirectory.resolve(what + "-" + port + ".log");
    Process process =
        new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    NbdServerProcess server = new NbdServerProcess(process, port, what);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (true) {
      try (NbdClient probe = NbdClient.connect(port, EXPORT)) {
        return server;
      } catch (IOException notYet) {
        if (!process.isAlive() || System.nanoTime() > deadline) {
          server.close();
          throw new IOException(
              what
                  + " did not start ("
                  + String.join(" ", command)
                  + "): "
                  + notYet.getMessage()
                  + "\n"
                  + Files.readString(log));
        }
        Thread.sleep(50);
      }
    }
  }

  long pid() {
    return process.pid();
  }

  /** User and system CPU time the server has used so far, from {@code /proc/PID/stat}. */
  long cpuNanos() {
    try {
      String stat = Files.readString(Path.of("/proc", Long.toString(process.pid()), "stat"));
      String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
      long ticks = Long.parseLong(fields[11]) + Long.parseLong(fields[12]);
      return ticks * 10_000_000L; // USER_HZ is 100
    } catch (IOException | RuntimeException e) {
      return -1;
    }
  }

  @Override
  public void close() throws InterruptedException {
    // SIGTERM: both servers finish and exit; nbdkit and qemu-nbd flush on the way out.
    process.destroy();
    if (!process.waitFor(20, TimeUnit.SECONDS)) {
      EngineBench.log("%s (pid %d) ignored SIGTERM; killing it", what, process.pid());
      process.destroyForcibly().waitFor();
    }
    try {
      Runtime.getRuntime().removeShutdownHook(hook);
    } catch (IllegalStateException shuttingDown) {
      // The hook runs anyway and finds the process gone.
    }
  }

  private static boolean commandWorks(String... command) {
    try {
      Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
      p.getInputStream().readAllBytes();
      return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
    } catch (IOException e) {
      return false;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
  }

  static String firstLine(String... command) {
    try {
      Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      p.waitFor(30, TimeUnit.SECONDS);
      return out.lines().findFirst().orElse("?").trim();
    } catch (IOException e) {
      return "not installed";
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return "?";
    }
  }

  /** Runs a short command to completion and returns its output; fails on a non-zero exit. */
  static String run(List<String> command) throws IOException {
    Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
    String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    try {
      if (!process.waitFor(10, TimeUnit.MINUTES)) {
        process.destroyForcibly();
        throw new IOException("timed out: " + String.join(" ", command));
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      process.destroyForcibly();
      throw new IOException("interrupted: " + String.join(" ", command), e);
    }
    if (process.exitValue() != 0) {
      throw new IOException(
          String.join(" ", command) + " exited with " + process.exitValue() + ": " + output);
    }
    return output;
  }
}
