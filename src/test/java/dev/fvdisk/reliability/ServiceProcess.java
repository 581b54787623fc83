package dev.fvdisk.reliability;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * The service under test as a child process: started from the packaged jar on a free port with its
 * own data directory, killed with SIGKILL, paused with SIGSTOP and resumed with SIGCONT.
 *
 * <p>Each start is a new <em>generation</em> on a new port, so a request meant for a dead process
 * can never reach its successor. A client takes the {@link Incarnation} it sends to from {@link
 * #current()}; when that incarnation dies, {@link Incarnation#deathTick()} bounds in {@link Ticks}
 * when any of its requests can have had an effect.
 *
 * <p>Start-up is the dominant cost of a kill loop, so the jar is first extracted and a dynamic CDS
 * archive is trained once per JVM (Spring Boot's documented recipe: {@code -Djarmode=tools
 * extract}, then a run with {@code -Dspring.context.exit=onRefresh}); where that fails the plain
 * jar runs. The system property {@code fvdisk.http.jar} names the jar (the pom passes it); without
 * it the newest {@code target/fvdisk-*.jar} is used.
 */
public final class ServiceProcess implements AutoCloseable {

  /** One run of the service process. */
  public static final class Incarnation {
    public final int generation;
    public final URI base;
    public final int nbdPort;

    /** The data port's base URI: the lean listener for reads (fvdisk.http-data). */
    public final URI dataBase;

    public final Process process;
    volatile boolean ready;
    volatile long deathTick = Long.MAX_VALUE;

    Incarnation(int generation, URI base, int nbdPort, URI dataBase, Process process) {
      this.generation = generation;
      this.base = base;
      this.nbdPort = nbdPort;
      this.dataBase = dataBase;
      this.process = process;
    }

    /** The tick after which this incarnation can change nothing; MAX_VALUE while it lives. */
    public long deathTick() {
      return deathTick;
    }
  }

  private static final long READY_TIMEOUT_MILLIS = 180_000;
  private static final List<String> JVM_FLAGS =
      List.of("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx384m", "-Xss512k");

  private static Launch launch;

  private record Launch(Path jar, Path cdsArchive) {}

  private final List<String> arguments;
  private final Path dataDir;
  private final Path logFile;
  private final HttpClient probe;
  private final List<Incarnation> incarnations = new ArrayList<>();
  private volatile Incarnation current;

  public ServiceProcess(Path workDir) throws IOException {
    this(workDir, List.of());
  }

  /**
   * @param arguments more command-line properties for every start, such as {@code
   *     --fvdisk.node-id=a}; {@code ${server.port}} in them is the port of that start
   */
  public ServiceProcess(Path workDir, List<String> arguments) throws IOException {
    this.arguments = List.copyOf(arguments);
    this.dataDir = Files.createDirectories(workDir.resolve("data"));
    this.logFile = workDir.resolve("service.log");
    this.probe = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
  }

  public Incarnation current() {
    return current;
  }

  List<Incarnation> incarnations() {
    return incarnations;
  }

  Path dataDir() {
    return dataDir;
  }

  /** Starts a new incarnation and returns without waiting for it. */
  synchronized Incarnation launch() throws IOException {
    Launch how = prepare();
    int[] ports = freePorts(3);
    int port = ports[0];
    int nbdPort = ports[1];
    int dataPort = ports[2];
    List<String> command = new ArrayList<>();
    command.add(javaExecutable());
    command.addAll(JVM_FLAGS);
    if (how.cdsArchive() != null) {
      command.add("-Xshare:auto");
      command.add("-XX:SharedArchiveFile=" + how.cdsArchive());
    }
    command.add("-jar");
    command.add(how.jar().toString());
    command.add("--server.port=" + port);
    command.add("--fvdisk.nbd.port=" + nbdPort);
    command.add("--fvdisk.http-data.enabled=true");
    command.add("--fvdisk.http-data.port=" + dataPort);
    command.add("--fvdisk.data-dir=" + dataDir);
    command.add("--spring.main.banner-mode=off");
    command.addAll(arguments);
    Files.writeString(
        logFile,
        "==== generation " + (incarnations.size() + 1) + " on port " + port + "\n",
        java.nio.file.StandardOpenOption.CREATE,
        java.nio.file.StandardOpenOption.APPEND);
    Process process =
        new ProcessBuilder(command)
            .redirectErrorStream(true)
            .redirectOutput(ProcessBuilder.Redirect.appendTo(logFile.toFile()))
            .start();
    Incarnation next =
        new Incarnation(
            incarnations.size() + 1,
            URI.create("http://127.0.0.1:" + port + "/"),
            nbdPort,
            URI.create("http://127.0.0.1:" + dataPort + "/"),
            process);
    incarnations.add(next);
    current = next;
    return next;
  }

  /**
   * Distinct free ports: every socket stays bound until all are picked, so two calls can never hand
   * out the same port (which once made a generation's web server and NBD listener collide).
   */
  private static int[] freePorts(int count) throws IOException {
    ServerSocket[] sockets = new ServerSocket[count];
    try {
      int[] ports = new int[count];
      for (int i = 0; i < count; i++) {
        sockets[i] = new ServerSocket(0);
        ports[i] = sockets[i].getLocalPort();
      }
      return ports;
    } finally {
      for (ServerSocket socket : sockets) {
        if (socket != null) {
          socket.close();
        }
      }
    }
  }

  /**
   * Starts a new incarnation and waits until {@code /actuator/health} answers 200; images are
   * opened (and recovered) before the web server starts, so that means they are ready.
   *
   * @return milliseconds from launch to ready
   */
  public long start() throws IOException, InterruptedException {
    long t0 = System.nanoTime();
    Incarnation inc = launch();
    awaitReady(inc);
    return (System.nanoTime() - t0) / 1_000_000;
  }

  void awaitReady(Incarnation inc) throws IOException, InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(READY_TIMEOUT_MILLIS);
    HttpRequest health =
        HttpRequest.newBuilder(inc.base.resolve("actuator/health"))
            .timeout(Duration.ofSeconds(5))
            .build();
    while (true) {
      if (!inc.process.isAlive()) {
        throw new IllegalStateException(
            "service generation " + inc.generation + " exited during start-up:\n" + logTail());
      }
      try {
        if (probe.send(health, HttpResponse.BodyHandlers.discarding()).statusCode() == 200) {
          inc.ready = true;
          return;
        }
      } catch (IOException e) {
        // not listening yet
      }
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException(
            "service not ready after " + READY_TIMEOUT_MILLIS + " ms:\n" + logTail());
      }
      Thread.sleep(25);
    }
  }

  /** SIGKILL, and wait until the process is gone; then its death tick is set. */
  public void kill() throws InterruptedException {
    Incarnation inc = current;
    inc.ready = false;
    inc.process.destroyForcibly();
    if (!inc.process.waitFor(60, TimeUnit.SECONDS)) {
      throw new IllegalStateException("process " + inc.process.pid() + " survived SIGKILL");
    }
    inc.deathTick = Ticks.next();
  }

  public void pause() throws IOException, InterruptedException {
    signal("STOP");
  }

  public void resume() throws IOException, InterruptedException {
    signal("CONT");
  }

  private void signal(String name) throws IOException, InterruptedException {
    Process kill =
        new ProcessBuilder("kill", "-" + name, Long.toString(current.process.pid()))
            .redirectErrorStream(true)
            .start();
    if (!kill.waitFor(30, TimeUnit.SECONDS) || kill.exitValue() != 0) {
      throw new IllegalStateException("kill -" + name + " failed");
    }
  }

  /** Stops the current incarnation with SIGTERM (a clean shutdown), or SIGKILL if it hangs. */
  @Override
  public void close() throws InterruptedException {
    Incarnation inc = current;
    if (inc == null || !inc.process.isAlive()) {
      return;
    }
    inc.ready = false;
    inc.process.destroy();
    if (!inc.process.waitFor(60, TimeUnit.SECONDS)) {
      inc.process.destroyForcibly().waitFor(60, TimeUnit.SECONDS);
    }
    inc.deathTick = Ticks.next();
  }

  public String logTail() {
    try {
      List<String> lines = Files.readAllLines(logFile);
      return String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
    } catch (IOException e) {
      return "(no log: " + e + ")";
    }
  }

  /**
   * The first error the service logged, on one line: the log line, the exception and its causes,
   * and fvdisk's own frames. A test puts it into its failure message, so that a CI run whose output
   * shows only the summary still says where an unexpected 500 came from.
   */
  public String firstLoggedError() {
    List<String> lines;
    try {
      lines = Files.readAllLines(logFile);
    } catch (IOException e) {
      return "(no log: " + e + ")";
    }
    for (int i = 0; i < lines.size(); i++) {
      if (!lines.get(i).contains(" ERROR ")) {
        continue;
      }
      StringBuilder error = new StringBuilder(lines.get(i).strip());
      int frames = 0;
      for (int j = i + 1; j < lines.size() && frames < 16; j++) {
        String line = lines.get(j).strip();
        if (line.isEmpty()) {
          continue; // Spring Boot's console format puts a blank line before the stack trace
        }
        boolean frame = line.startsWith("at ");
        if (!frame && !line.startsWith("Caused by") && !line.contains("Exception")) {
          if (!line.startsWith("...")) {
            break;
          }
          continue;
        }
        if (!frame || line.startsWith("at dev.fvdisk")) {
          error.append(" | ").append(line);
          frames++;
        }
      }
      return error.toString();
    }
    return "(no error in the service log)";
  }

  private static String javaExecutable() {
    return Path.of(System.getProperty("java.home"), "bin", "java").toString();
  }

  private static synchronized Launch prepare() throws IOException {
    if (launch != null) {
      return launch;
    }
    Path jar = findJar();
    Path dir = Path.of("target", "reliability-cds").toAbsolutePath();
    Path app = dir.resolve("app");
    Path extracted = app.resolve(jar.getFileName());
    Path archive = dir.resolve("fvdisk.jsa");
    try {
      deleteRecursively(dir);
      Files.createDirectories(dir);
      run(
          List.of(
              javaExecutable(),
              "-Djarmode=tools",
              "-jar",
              jar.toString(),
              "extract",
              "--destination",
              app.toString()),
          dir.resolve("extract.log"));
      Path trainData = Files.createDirectories(dir.resolve("train-data"));
      List<String> train = new ArrayList<>();
      train.add(javaExecutable());
      train.addAll(JVM_FLAGS);
      train.add("-XX:ArchiveClassesAtExit=" + archive);
      train.add("-Dspring.context.exit=onRefresh");
      train.add("-jar");
      train.add(extracted.toString());
      train.add("--server.port=0");
      train.add("--fvdisk.data-dir=" + trainData);
      run(train, dir.resolve("train.log"));
      if (!Files.isRegularFile(extracted) || !Files.isRegularFile(archive)) {
        throw new IOException("no extracted jar or CDS archive in " + dir);
      }
      launch = new Launch(extracted, archive);
    } catch (IOException | InterruptedException | RuntimeException e) {
      System.out.println("reliability: no CDS (" + e + "); starting the plain jar");
      launch = new Launch(jar, null);
    }
    return launch;
  }

  private static void run(List<String> command, Path log) throws IOException, InterruptedException {
    Process p =
        new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    if (!p.waitFor(300, TimeUnit.SECONDS)) {
      p.destroyForcibly().waitFor();
      throw new IOException("timed out: " + command);
    }
    if (p.exitValue() != 0) {
      throw new IOException("exit status " + p.exitValue() + ": " + command);
    }
  }

  private static Path findJar() throws IOException {
    String named = System.getProperty("fvdisk.http.jar");
    if (named != null && !named.isBlank() && Files.isRegularFile(Path.of(named))) {
      return Path.of(named).toAbsolutePath();
    }
    try (Stream<Path> files = Files.list(Path.of("target"))) {
      return files
          .filter(p -> p.getFileName().toString().matches("fvdisk-.*\\.jar"))
          .max(
              (a, b) -> {
                try {
                  return Files.getLastModifiedTime(a).compareTo(Files.getLastModifiedTime(b));
                } catch (IOException e) {
                  return 0;
                }
              })
          .map(Path::toAbsolutePath)
          .orElseThrow(() -> new IOException("no target/fvdisk-*.jar; run ./mvnw package"));
    }
  }

  public static void deleteRecursively(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    try (Stream<Path> paths = Files.walk(dir)) {
      for (Path p : paths.sorted(java.util.Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    }
  }
}
