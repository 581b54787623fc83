package dev.fvdisk.engine;

import dev.fvdisk.testing.SectorOracle;
import dev.fvdisk.testing.SectorStamp;
import java.io.Closeable;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The append-only progress log a {@link CrashWorker} leaves for the test that kills it: one text
 * line per event, in the order the events happened.
 *
 * <pre>
 * B                                       booted, about to open the image
 * O openMicros afterCrash replayedRecords leakedChunks
 *                                         image open; opening (and recovery) took openMicros
 * S writeId offsetBytes lengthBytes       logged before the write is issued
 * C writeId                               logged after the write returned; the n-th C line
 *                                         is completion number n
 * D n                                     a flush that was called after completion n was logged
 *                                         has returned: completions 1..n are durable
 * P millis                                a clone's prefetching has finished, millis after the
 *                                         worker started writing
 * E message                               the worker failed and exits
 * </pre>
 *
 * <p>Every line reaches the file with one {@code write(2)} before the event it announces (S) or
 * after the event it reports (C, D). A SIGKILL does not discard what the kernel already holds, so
 * the log never claims more than happened; it may only miss the last event, and a torn last line is
 * ignored. The order of lines is the real-time order of the events because they are appended under
 * one lock, so "C x before S y" proves write x returned before write y was issued.
 */
final class CrashLog {

  private CrashLog() {}

  /** The worker's side: appends lines, each in a single write. */
  static final class Writer implements Closeable {
    private final FileChannel channel;
    private long completions;

    Writer(Path file) throws IOException {
      channel =
          FileChannel.open(
              file, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.APPEND);
    }

    synchronized void booted() throws IOException {
      append("B");
    }

    synchronized void opened(long openMicros, ImageStats stats) throws IOException {
      append(
          "O "
              + openMicros
              + " "
              + (stats.openedAfterCrash() ? 1 : 0)
              + " "
              + stats.replayedJournalRecords()
              + " "
              + stats.leakedChunks());
    }

    synchronized void started(long writeId, long offsetBytes, int lengthBytes) throws IOException {
      append("S " + writeId + " " + offsetBytes + " " + lengthBytes);
    }

    synchronized void completed(long writeId) throws IOException {
      append("C " + writeId);
      completions++;
    }

    /** Completions logged so far; every one of them returned before this call. */
    synchronized long completions() {
      return completions;
    }

    synchronized void durable(long completionsBeforeFlush) throws IOException {
      append("D " + completionsBeforeFlush);
    }

    synchronized void prefetchDone(long millis) throws IOException {
      append("P " + millis);
    }

    synchronized void failed(Throwable error) throws IOException {
      StringWriter trace = new StringWriter();
      error.printStackTrace(new PrintWriter(trace));
      append("E " + trace.toString().replace('\n', '|'));
    }

    private void append(String line) throws IOException {
      ByteBuffer bytes = ByteBuffer.wrap((line + "\n").getBytes(StandardCharsets.US_ASCII));
      while (bytes.hasRemaining()) {
        channel.write(bytes);
      }
    }

    @Override
    public synchronized void close() throws IOException {
      channel.close();
    }
  }

  /**
   * One write the worker issued. Line numbers order events in real time.
   *
   * @param startLine line number of its S line
   * @param completionLine line number of its C line, or {@link Long#MAX_VALUE} if it never returned
   *     (it was running when the worker died)
   * @param durable whether a flush called after it returned has returned
   */
  record Write(
      long id,
      long offsetBytes,
      int lengthBytes,
      long startLine,
      long completionLine,
      boolean durable)
      implements SectorOracle.Write {

    @Override
    public long firstSector() {
      return offsetBytes / SectorStamp.SECTOR_BYTES;
    }

    @Override
    public long endSector() {
      return (offsetBytes + lengthBytes) / SectorStamp.SECTOR_BYTES;
    }

    @Override
    public long start() {
      return startLine;
    }

    @Override
    public long end() {
      return completionLine;
    }

    boolean covers(long sector) {
      return sector >= firstSector() && sector < endSector();
    }
  }

  /**
   * What a log says happened.
   *
   * @param openMicros the worker's open time, or -1 if it died before the image was open
   * @param prefetchDoneMillis when the worker saw prefetching finish, or -1 if it did not
   * @param error the worker's failure, or null
   */
  record Run(
      boolean booted,
      long openMicros,
      boolean openedAfterCrash,
      long replayedRecords,
      long leakedChunksAtOpen,
      List<Write> writes,
      long completedWrites,
      long durableCompletions,
      long flushes,
      long prefetchDoneMillis,
      String error) {}

  static Run read(Path file) throws IOException {
    byte[] bytes = Files.exists(file) ? Files.readAllBytes(file) : new byte[0];
    String text = new String(bytes, StandardCharsets.US_ASCII);
    // A line without its newline was torn by the kill: the event it announced never started.
    int end = text.lastIndexOf('\n') + 1;
    String[] lines = end == 0 ? new String[0] : text.substring(0, end).split("\n");

    boolean booted = false;
    long openMicros = -1;
    boolean afterCrash = false;
    long replayed = 0;
    long leaked = 0;
    long flushes = 0;
    long durableCompletions = 0;
    long prefetchDoneMillis = -1;
    String error = null;
    Map<Long, long[]> started = new HashMap<>();
    List<Long> order = new ArrayList<>();
    Map<Long, Long> completedAt = new HashMap<>();
    List<Long> completionOrder = new ArrayList<>();
    for (int lineNumber = 0; lineNumber < lines.length; lineNumber++) {
      String[] f = lines[lineNumber].split(" ");
      switch (f[0]) {
        case "B" -> booted = true;
        case "O" -> {
          openMicros = Long.parseLong(f[1]);
          afterCrash = f[2].equals("1");
          replayed = Long.parseLong(f[3]);
          leaked = Long.parseLong(f[4]);
        }
        case "S" -> {
          long id = Long.parseLong(f[1]);
          started.put(id, new long[] {Long.parseLong(f[2]), Long.parseLong(f[3]), lineNumber});
          order.add(id);
        }
        case "C" -> {
          long id = Long.parseLong(f[1]);
          completedAt.put(id, (long) lineNumber);
          completionOrder.add(id);
        }
        case "D" -> {
          flushes++;
          durableCompletions = Math.max(durableCompletions, Long.parseLong(f[1]));
        }
        case "P" -> prefetchDoneMillis = Long.parseLong(f[1]);
        case "E" -> error = lines[lineNumber].substring(2).replace('|', '\n');
        default -> throw new IOException(file + ": line " + lineNumber + ": " + lines[lineNumber]);
      }
    }
    if (durableCompletions > completionOrder.size()) {
      throw new IOException(
          file
              + ": a flush claims "
              + durableCompletions
              + " completions, only "
              + completionOrder.size()
              + " were logged");
    }
    Map<Long, Boolean> durable = new HashMap<>();
    for (int i = 0; i < durableCompletions; i++) {
      durable.put(completionOrder.get(i), true);
    }
    List<Write> writes = new ArrayList<>(order.size());
    for (long id : order) {
      long[] s = started.get(id);
      writes.add(
          new Write(
              id,
              s[0],
              (int) s[1],
              s[2],
              completedAt.getOrDefault(id, Long.MAX_VALUE),
              durable.getOrDefault(id, false)));
    }
    return new Run(
        booted,
        openMicros,
        afterCrash,
        replayed,
        leaked,
        writes,
        completionOrder.size(),
        durableCompletions,
        flushes,
        prefetchDoneMillis,
        error);
  }
}
