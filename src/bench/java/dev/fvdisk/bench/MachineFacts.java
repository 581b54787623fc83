package dev.fvdisk.bench;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * What the report says about the machine: the same commands docs/performance.md quotes, plus the
 * load average before and after, because on a shared machine other builds may run alongside.
 */
final class MachineFacts {

  final String nproc;
  final String free;
  final String df;
  final String fileSystem;
  final String kernel;
  final String cpu;
  final String java;
  final String loadBefore;
  String loadAfter = "?";

  private MachineFacts(Path directory) {
    nproc = command("nproc");
    free = command("free", "-g");
    df = command("df", "-h", directory.toString());
    fileSystem = command("findmnt", "-n", "-o", "FSTYPE,OPTIONS", "-T", directory.toString());
    kernel = command("uname", "-sr");
    cpu = cpuModel();
    java =
        System.getProperty("java.vm.name")
            + " "
            + System.getProperty("java.runtime.version")
            + ", "
            + Runtime.getRuntime().availableProcessors()
            + " processors, max heap "
            + Runtime.getRuntime().maxMemory() / (1 << 20)
            + " MiB";
    loadBefore = loadAverage();
  }

  static MachineFacts collect(Path directory) {
    return new MachineFacts(directory);
  }

  void finish() {
    loadAfter = loadAverage();
  }

  private static String loadAverage() {
    try {
      String[] parts = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
      return parts[0] + " " + parts[1] + " " + parts[2];
    } catch (IOException | RuntimeException e) {
      return "?";
    }
  }

  private static String cpuModel() {
    try {
      return Files.readAllLines(Path.of("/proc/cpuinfo")).stream()
          .filter(l -> l.startsWith("model name"))
          .map(l -> l.substring(l.indexOf(':') + 1).trim())
          .findFirst()
          .orElse("?");
    } catch (IOException e) {
      return "?";
    }
  }

  private static String command(String... command) {
    try {
      Process process = new ProcessBuilder(List.of(command)).redirectErrorStream(true).start();
      String out = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      process.waitFor(30, TimeUnit.SECONDS);
      // Only trailing space: free and df align their header line with leading spaces.
      return out.stripTrailing();
    } catch (IOException e) {
      return "(" + command[0] + " not available)";
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return "(interrupted)";
    }
  }
}
