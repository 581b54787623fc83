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

  /**
   * Lays out the images every repetition shares; called once, untimed. A contender that returns
   * true from {@link #fill} gets its data written afterwards; any other fills its images here.
   */
  void prepare() throws Exception;

  /**
   * Writes {@code data} at {@code offsetBytes} of the shared image during preparation. The harness
   * fills every contender that accepts this in lockstep, one MiB each in turn, so that their page
   * cache is built up alike: the file written first paid 30-40% more CPU per 4 KiB overwrite later
   * on this machine, whichever contender's it was.
   *
   * @return false when this contender fills its images itself in {@link #prepare}
   */
  default boolean fill(long offsetBytes, java.nio.ByteBuffer data) throws Exception {
    return false;
  }

  /** Makes what {@link #fill} wrote durable. */
  default void finishFill() throws Exception {}

  /**
   * Runs one repetition. Setup a repetition needs (a fresh image, forcing earlier writes so they do
   * not spill into this run) happens before the clock starts; teardown after it stops.
   */
  RunResult runOnce(Scenario scenario) throws Exception;
}
