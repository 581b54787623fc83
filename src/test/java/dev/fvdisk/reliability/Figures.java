package dev.fvdisk.reliability;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/** Counters of one harness run, for the report. Thread-safe. */
final class Figures {

  final String title;
  long iterations;
  long kills;
  long killsDuringStartup;
  long killsSurvived;
  long pauses;
  long imagesRecreated;
  long writesIssued;
  long writesAcked;

  /** Acknowledged writes that went through the data port rather than the main port. */
  long writesAckedViaDataPort;

  long writesAckedNotFlushed;
  long writesUnknown;
  long writesFailed;
  long unexpectedStatuses;
  long bytesWritten;
  long writesStraddlingChunks;
  long writesIntoFreshChunks;
  long writesOverBase;
  long flushes;
  long zerosIssued;
  long zerosAcked;
  long zerosAckedNotFlushed;
  long zerosUnknown;
  long zerosWholeChunks;
  long bytesZeroed;
  long snapshotsRequested;
  long snapshotsCreated;
  long snapshotsUnknown;
  long snapshotsUnknownFound;
  long snapshotDeletes;
  long snapshotDeletesAcked;
  long snapshotDeletesNotOldest;
  long snapshotDeletesUnknown;
  long snapshotDeletesUnknownSurvived;
  long snapshotsMostAlive;
  long snapshotsFirstVerified;
  long snapshotsReverified;
  long snapshotBytesVerified;
  long snapshotsConfirmedGone;
  long snapshotsLost;
  long snapshotsResurrected;
  long verifications;
  long bytesVerified;
  long writesVerified;
  long writesChecked;
  long durableWrites;
  long durableWritesVerified;
  long durableBytesVerified;
  long durableBytesLost;
  long foreignSectors;
  long checks;
  long checksOk;
  long checksLeaks;
  long corruptResults;
  long leakedChunksReported;
  long reclaimedChunks;
  long repairs;
  long historyReads;
  long historyDataPortReads;
  long historySectorsChecked;
  long historyViolations;
  long historyTornSectors;
  long runtimeMillis;
  final List<Long> restartMillis = new ArrayList<>();
  final List<String> failures = new ArrayList<>();
  final List<String> notes = new ArrayList<>();

  Figures(String title) {
    this.title = title;
  }

  synchronized void add(ImageModel.Verdict v) {
    verifications++;
    bytesVerified += v.bytesVerified();
    writesChecked += v.writes();
    writesVerified += v.writesVerified();
    durableWrites += v.durableWrites();
    durableWritesVerified += v.durableWritesVerified();
    durableBytesVerified += v.durableBytesVerified();
    durableBytesLost += v.durableBytesLost();
    foreignSectors += v.foreignSectors();
    failures.addAll(v.failures());
  }

  /**
   * A snapshot read back in full: on its first read after a restart ({@code first}), judged against
   * the bounds of its epoch, later against its first read.
   */
  synchronized void addSnapshot(ImageModel.Verdict v, boolean first) {
    if (first) {
      snapshotsFirstVerified++;
    } else {
      snapshotsReverified++;
    }
    snapshotBytesVerified += v.bytesVerified();
    durableBytesLost += v.durableBytesLost();
    foreignSectors += v.foreignSectors();
    failures.addAll(v.failures());
  }

  synchronized void restarted(long millis) {
    restartMillis.add(millis);
  }

  synchronized void fail(String failure) {
    if (failures.size() < 50) {
      failures.add(failure);
    }
  }

  synchronized void note(String note) {
    notes.add(note);
  }

  synchronized long percentile(int p) {
    if (restartMillis.isEmpty()) {
      return -1;
    }
    List<Long> sorted = new ArrayList<>(restartMillis);
    Collections.sort(sorted);
    int rank = (int) Math.ceil(p / 100.0 * sorted.size()) - 1;
    return sorted.get(Math.max(0, Math.min(sorted.size() - 1, rank)));
  }

  /** The figures as a Markdown section. */
  synchronized String markdown() {
    StringBuilder b = new StringBuilder("## ").append(title).append("\n\n");
    b.append("| figure | value |\n|---|---|\n");
    boolean history = historyReads > 0;
    if (!history) {
      row(b, "iterations", iterations);
      row(b, "kills (SIGKILL)", kills);
      if (killsDuringStartup > 0) {
        row(b, "  of them during start-up / recovery", killsDuringStartup);
      }
      row(b, "kills survived (restart, check, full verification passed)", killsSurvived);
      if (pauses > 0) {
        row(b, "pauses (SIGSTOP ... SIGCONT)", pauses);
      }
      if (imagesRecreated > 0) {
        row(b, "images deleted and created again between kills", imagesRecreated);
      }
    }
    row(b, "writes issued", writesIssued);
    row(b, "  acknowledged (2xx)", writesAcked);
    row(b, "  of them acknowledged with ?flush=false", writesAckedNotFlushed);
    row(b, "  of them acknowledged by the data port", writesAckedViaDataPort);
    row(b, "  outcome unknown (in flight at a kill, timeout, connection lost)", writesUnknown);
    row(b, "  answered with an error status", writesFailed);
    if (!history) {
      row(b, "  straddling a chunk boundary", writesStraddlingChunks);
      row(b, "  reaching a never-written chunk", writesIntoFreshChunks);
      row(b, "  over a clone's base-image range", writesOverBase);
    }
    row(b, "bytes written (issued)", bytesWritten);
    row(b, "flush operations", flushes);
    if (zerosIssued > 0) {
      row(b, "zero operations issued", zerosIssued);
      row(b, "  acknowledged (2xx)", zerosAcked);
      row(b, "  of them acknowledged with flush=false", zerosAckedNotFlushed);
      row(b, "  outcome unknown (in flight at a kill)", zerosUnknown);
      row(b, "  covering at least one whole chunk (unmapped)", zerosWholeChunks);
      row(b, "bytes zeroed (issued)", bytesZeroed);
    }
    if (snapshotsRequested > 0) {
      row(b, "snapshots requested", snapshotsRequested);
      row(b, "  created (201)", snapshotsCreated);
      row(b, "  outcome unknown (in flight at a kill)", snapshotsUnknown);
      row(b, "  of those, present after the restart", snapshotsUnknownFound);
      row(b, "snapshot deletions requested", snapshotDeletes);
      row(b, "  acknowledged (204)", snapshotDeletesAcked);
      row(b, "  of a snapshot that was not the oldest", snapshotDeletesNotOldest);
      row(b, "  outcome unknown (in flight at a kill)", snapshotDeletesUnknown);
      row(
          b,
          "  of those, snapshot still present after the restart",
          snapshotDeletesUnknownSurvived);
      row(b, "most snapshots of one image at once", snapshotsMostAlive);
      row(
          b,
          "snapshot reads verified: first after their epoch / again later",
          snapshotsFirstVerified + " / " + snapshotsReverified);
      row(b, "snapshot bytes verified", snapshotBytesVerified);
      row(b, "deleted snapshots confirmed gone (404) after a restart", snapshotsConfirmedGone);
      row(b, "**created snapshots missing after a restart (must be 0)**", snapshotsLost);
      row(b, "**deleted or unknown snapshots listed (must be 0)**", snapshotsResurrected);
      row(
          b,
          "sectors verified (images and snapshots)",
          (bytesVerified + snapshotBytesVerified) / 512);
    }
    if (history) {
      row(b, "reads checked against the history", historyReads);
      row(b, "of them through the data port", historyDataPortReads);
      row(b, "sectors checked against the history", historySectorsChecked);
      row(b, "history violations (must be 0)", historyViolations);
      row(b, "torn sectors under a concurrent overlapping write", historyTornSectors);
    } else {
      row(b, "full-image verifications", verifications);
      row(b, "bytes verified", bytesVerified);
      row(b, "writes verified / checked", writesVerified + " / " + writesChecked);
      row(
          b,
          "acknowledged-durable writes verified / total",
          durableWritesVerified + " / " + durableWrites);
      row(b, "acknowledged-durable bytes verified", durableBytesVerified);
      row(b, "**acknowledged-durable bytes lost (must be 0)**", durableBytesLost);
      row(b, "**sectors with foreign content (must be 0)**", foreignSectors);
      row(b, "checker runs (ok / leaks)", checks + " (" + checksOk + " / " + checksLeaks + ")");
      row(b, "**corrupt checker results (must be 0)**", corruptResults);
      row(b, "leaked chunks reported by the checker", leakedChunksReported);
      row(b, "repairs (check?repair=true) / chunks reclaimed", repairs + " / " + reclaimedChunks);
    }
    if (!restartMillis.isEmpty()) {
      row(
          b,
          "restart-to-ready ms p50 / p99 / max (n)",
          percentile(50)
              + " / "
              + percentile(99)
              + " / "
              + Collections.max(restartMillis)
              + " ("
              + restartMillis.size()
              + ")");
    }
    row(b, "run time, s", String.format("%.1f", runtimeMillis / 1000.0));
    b.append('\n');
    for (String n : notes) {
      b.append("- ").append(n).append('\n');
    }
    if (!failures.isEmpty()) {
      b.append("\nFailures:\n\n");
      for (String f : failures) {
        b.append("- ").append(f).append('\n');
      }
    }
    return b.append('\n').toString();
  }

  private static void row(StringBuilder b, String name, Object value) {
    b.append("| ").append(name).append(" | ").append(value).append(" |\n");
  }
}
