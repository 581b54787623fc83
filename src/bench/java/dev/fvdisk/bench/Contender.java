package dev.fvdisk.bench;

import java.io.Closeable;

/**
 * One column of the results: something that serves the patterns. The engine, plain FileChannel I/O
 * and qemu-img bench are contenders today; the HTTP level adds the service and nginx as further
 * contenders, driven through a {@link BlockTarget} over HTTP and an external load client.
 */
interface Contender extends Closeable {

  /** Short column name, e.g. "fvdisk". */
  String name();

  /** What image or file the contender uses for {@code scenario}, for the detailed table. */
  String imageFor(Scenario scenario);

  boolean supports(Scenario scenario);

  /** Lays out and fills the images every repetition shares; called once, untimed. */
  void prepare() throws Exception;

  /**
   * Runs one repetition. Setup a repetition needs (a fresh image, forcing earlier writes so they do
   * not spill into this run) happens before the clock starts; teardown after it stops.
   */
  RunResult runOnce(Scenario scenario) throws Exception;
}
