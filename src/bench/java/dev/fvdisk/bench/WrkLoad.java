package dev.fvdisk.bench;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

/**
 * One run of {@code wrk}, the HTTP load generator, with a generated Lua script that issues ranged
 * {@code GET}s or {@code PUT}s at the offsets of an {@link Offsets} sequence: operation {@code i}
 * goes to {@code offsets.offsetBytes(i)}, and wrk's threads take every {@code threads}-th index, so
 * the run covers the sequence from the start like the in-process workload does.
 *
 * <p>wrk measures each request from its first byte sent to its last byte received, keeps
 * connections alive, and reports its own duration, which leaves out its start-up.
 *
 * @param path request path with any query, e.g. {@code /api/v1/images/bench/data?flush=false}
 * @param put a {@code PUT} with {@code Content-Range}; otherwise a {@code GET} with {@code Range}
 * @param requestBytes bytes per request, from the start of each unit; at most the unit
 */
record WrkLoad(
    int port,
    String path,
    boolean put,
    Offsets offsets,
    long requestBytes,
    int connections,
    double seconds) {

  /** Requests of a whole unit each. */
  WrkLoad(int port, String path, boolean put, Offsets offsets, int connections, double seconds) {
    this(port, path, put, offsets, offsets.unitBytes, connections, seconds);
  }

  static boolean available() {
    try {
      Process p = new ProcessBuilder("wrk", "--version").redirectErrorStream(true).start();
      p.getInputStream().readAllBytes();
      p.waitFor(10, TimeUnit.SECONDS);
      return true;
    } catch (IOException e) {
      return false;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
  }

  static String version() {
    try {
      Process p = new ProcessBuilder("wrk", "--version").redirectErrorStream(true).start();
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      p.waitFor(10, TimeUnit.SECONDS);
      return out.lines().findFirst().orElse("?").trim();
    } catch (IOException e) {
      return "?";
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return "?";
    }
  }

  /** wrk's threads: one per core at most, and never more than connections. */
  int threads() {
    return Math.min(connections, Math.max(1, Runtime.getRuntime().availableProcessors()));
  }

  /** The command line, for the report. */
  String describe() {
    return String.format(
        Locale.ROOT,
        "wrk -t%d -c%d -d%ss -s <%s %s, %d bytes at %d-byte units, stride %d>",
        threads(),
        connections,
        seconds,
        put ? "PUT" : "GET",
        path,
        requestBytes,
        offsets.unitBytes,
        offsets.strideUnits);
  }

  /**
   * Runs wrk and returns its figures. The result's {@code callerCpuNanos} is wrk's own CPU time
   * (user and system, from the shell's {@code times}), and {@code serverCpuNanos} what {@code
   * serverCpu} reports went up by during the run: on two shared cores these show where the time
   * goes, client or server.
   */
  RunResult run(Path scratch, LongSupplier serverCpu) throws IOException, InterruptedException {
    Path script = Files.createTempFile(scratch, "wrk-", ".lua");
    try {
      Files.writeString(script, script(), StandardCharsets.UTF_8);
      long duration = Math.max(1, Math.round(seconds));
      List<String> command = new ArrayList<>();
      command.addAll(
          List.of(
              "bash",
              "-c",
              "wrk \"$@\"; status=$?; times; exit $status",
              "bash",
              "-t" + threads(),
              "-c" + connections,
              "-d" + duration + "s",
              "--timeout",
              "30s",
              "-s",
              script.toString(),
              "http://127.0.0.1:" + port + path));
      long serverCpuBefore = serverCpu.getAsLong();
      Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
      String out = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      long serverCpuNanos = serverCpu.getAsLong() - serverCpuBefore;
      if (!process.waitFor(duration + 60, TimeUnit.SECONDS) || process.exitValue() != 0) {
        throw new IOException("wrk failed: " + out);
      }
      return parse(out, serverCpuNanos);
    } finally {
      Files.deleteIfExists(script);
    }
  }

  private RunResult parse(String out, long serverCpuNanos) throws IOException {
    String line =
        out.lines()
            .filter(l -> l.startsWith("RESULT "))
            .findFirst()
            .orElseThrow(() -> new IOException("no result from wrk: " + out));
    Map<String, Long> values = new HashMap<>();
    for (String field : line.substring("RESULT ".length()).trim().split(" ")) {
      String[] kv = field.split("=");
      values.put(kv[0], Long.parseLong(kv[1]));
    }
    long errors =
        values.get("connect")
            + values.get("read")
            + values.get("write")
            + values.get("status")
            + values.get("timeout");
    long requests = values.get("requests");
    if (errors > 0) {
      throw new IOException("wrk saw errors (" + line + "); the service or nginx refused requests");
    }
    long elapsedNanos = values.get("duration_us") * 1000;
    return new RunResult(
        requests,
        requests * requestBytes,
        elapsedNanos,
        values.get("p50_us") * 1000,
        values.get("p99_us") * 1000,
        childrenCpuNanos(out),
        serverCpuNanos);
  }

  /** The last line of bash's {@code times}: user and system time of its children, e.g. 0m1.5s. */
  private static long childrenCpuNanos(String out) {
    List<String> lines = out.lines().filter(l -> l.matches("\\d+m[\\d.]+s \\d+m[\\d.]+s")).toList();
    if (lines.isEmpty()) {
      return -1;
    }
    long nanos = 0;
    for (String time : lines.get(lines.size() - 1).split(" ")) {
      int m = time.indexOf('m');
      nanos +=
          Math.round(
              (Long.parseLong(time.substring(0, m)) * 60
                      + Double.parseDouble(time.substring(m + 1, time.length() - 1)))
                  * 1e9);
    }
    return nanos;
  }

  /** The Lua script: one request generator per wrk thread, a summary line at the end. */
  String script() {
    String contentRange =
        "[\"Content-Range\"] = \"bytes \" .. first .. \"-\" .. last .. \"/*\", "
            + "[\"Content-Type\"] = \"application/octet-stream\"";
    StringBuilder s = new StringBuilder();
    s.append("local unit = ").append(offsets.unitBytes).append('\n');
    s.append("local units = ").append(offsets.units).append('\n');
    s.append("local stride = ").append(offsets.strideUnits).append('\n');
    s.append("local size = ").append(requestBytes).append('\n');
    s.append("local threads = ").append(threads()).append('\n');
    s.append(
        """
        local next_id = 0
        local index, body

        function setup(thread)
          thread:set("id", next_id)
          next_id = next_id + 1
        end

        function init(args)
          index = id
        """);
    if (put) {
      // A different pseudo-random 4 KiB block per thread, repeated to the request size.
      s.append(
          """
            math.randomseed(42 + id)
            local parts = {}
            for i = 1, 4096 do parts[i] = string.char(math.random(0, 255)) end
            local block = table.concat(parts)
            body = string.rep(block, size / 4096)
          """);
    }
    s.append("end\n\n");
    s.append(
        """
        function request()
          local first = (index % units) * stride % units * unit
          local last = first + size - 1
          index = index + threads
        """);
    if (put) {
      s.append("  return wrk.format(\"PUT\", nil, {").append(contentRange).append("}, body)\n");
    } else {
      s.append(
          "  return wrk.format(\"GET\", nil, {Range = \"bytes=\" .. first .. \"-\" .. last})\n");
    }
    s.append("end\n\n");
    s.append(
        """
        function done(summary, latency, requests)
          local e = summary.errors
          io.write(string.format(
            "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d connect=%d read=%d write=%d status=%d timeout=%d\\n",
            summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
            e.connect, e.read, e.write, e.status, e.timeout))
        end
        """);
    return s.toString();
  }
}
