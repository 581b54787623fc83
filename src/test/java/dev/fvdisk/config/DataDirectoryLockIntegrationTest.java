package dev.fvdisk.config;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two service processes on one data directory: the second is refused at start with a message that
 * says why and what to do, and the first goes on serving. After the first is killed with SIGKILL,
 * the kernel has released its lock, and a new service starts on the directory.
 */
class DataDirectoryLockIntegrationTest {

  @Test
  void a_second_service_on_a_data_directory_in_use_is_refused(@TempDir Path work) throws Exception {
    Path data = Files.createDirectories(work.resolve("data"));
    Process first = start(data, work.resolve("first.log"));
    try {
      awaitStarted(first, work.resolve("first.log"));
      Path secondLog = work.resolve("second.log");
      Process second = start(data, secondLog);
      assertThat(second.waitFor(120, TimeUnit.SECONDS)).as("the second service exits").isTrue();
      String log = Files.readString(secondLog);
      assertThat(second.exitValue()).as(log).isNotZero();
      assertThat(log)
          .contains("APPLICATION FAILED TO START")
          .contains("is in use by another fvdisk service (process " + first.pid() + ")")
          .contains("fvdisk.data-dir");
      assertThat(first.isAlive()).isTrue();
    } finally {
      first.destroyForcibly().waitFor(60, TimeUnit.SECONDS);
    }
    Path thirdLog = work.resolve("third.log");
    Process third = start(data, thirdLog);
    try {
      awaitStarted(third, thirdLog);
    } finally {
      third.destroyForcibly().waitFor(60, TimeUnit.SECONDS);
    }
  }

  private static Process start(Path data, Path log) throws IOException {
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    command.addAll(List.of("-Xmx256m", "-XX:TieredStopAtLevel=1", "-jar", jar().toString()));
    command.addAll(
        List.of(
            "--server.port=0",
            "--fvdisk.nbd.port=0",
            "--server.address=127.0.0.1",
            "--fvdisk.data-dir=" + data,
            "--spring.main.banner-mode=off"));
    return new ProcessBuilder(command)
        .redirectErrorStream(true)
        .redirectOutput(log.toFile())
        .start();
  }

  private static void awaitStarted(Process process, Path log) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
    while (System.nanoTime() < deadline) {
      if (Files.exists(log) && Files.readString(log).contains("Started FvdiskApplication")) {
        return;
      }
      assertThat(process.isAlive()).as("service died: %s", Files.readString(log)).isTrue();
      Thread.sleep(100);
    }
    throw new AssertionError("the service did not start: " + Files.readString(log));
  }

  private static Path jar() throws IOException {
    String named = System.getProperty("fvdisk.http.jar");
    if (named != null && Files.exists(Path.of(named))) {
      return Path.of(named);
    }
    try (Stream<Path> files = Files.list(Path.of("target"))) {
      return files
          .filter(p -> p.getFileName().toString().matches("fvdisk-.*\\.jar"))
          .findFirst()
          .orElseThrow(() -> new IOException("no target/fvdisk-*.jar: run ./mvnw package"));
    }
  }
}
