package dev.fvdisk.bench;

/**
 * One row of the results: a pattern, how many callers run it at once, and whether each caller makes
 * every write durable before its next one.
 *
 * @param callers concurrent callers (threads in process, {@code -d} queue depth for qemu-img)
 * @param durable each caller flushes after each write; for qemu-img a flush every {@code callers}
 *     writes after draining them, which is what a perfect group commit achieves
 * @param opCount operations per measured repetition, shared by all callers
 */
record Scenario(Pattern pattern, int callers, boolean durable, long opCount) {

  String modeLabel() {
    return pattern.write ? (durable ? "durable" : "write-back") : "-";
  }

  String label() {
    return pattern.id() + " x" + callers + (pattern.write ? " " + modeLabel() : "");
  }

  long bytesPerRepetition() {
    return opCount * pattern.ioBytes;
  }
}
