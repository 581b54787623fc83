package dev.fvdisk.bench;

/**
 * One measured repetition.
 *
 * @param p50LatencyNanos median time of one operation (write plus flush in durable mode), or -1
 *     when the contender does not report latencies (qemu-img)
 * @param p99LatencyNanos 99th percentile, or -1
 * @param callerCpuNanos CPU time (user and system) the callers' threads used, or -1 when unknown;
 *     work the kernel does elsewhere (writeback, journal commits) is not in it; for HTTP runs the
 *     load client's (wrk's) CPU time
 * @param serverCpuNanos CPU time of the server process during an HTTP run, or -1
 */
record RunResult(
    long ops,
    long bytes,
    long elapsedNanos,
    long p50LatencyNanos,
    long p99LatencyNanos,
    long callerCpuNanos,
    long serverCpuNanos) {

  RunResult(
      long ops,
      long bytes,
      long elapsedNanos,
      long p50LatencyNanos,
      long p99LatencyNanos,
      long callerCpuNanos) {
    this(ops, bytes, elapsedNanos, p50LatencyNanos, p99LatencyNanos, callerCpuNanos, -1);
  }

  double megabytesPerSecond() {
    return bytes / 1e6 / (elapsedNanos / 1e9);
  }

  double opsPerSecond() {
    return ops / (elapsedNanos / 1e9);
  }
}
