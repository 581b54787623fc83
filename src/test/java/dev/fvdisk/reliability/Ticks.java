package dev.fvdisk.reliability;

import java.util.concurrent.atomic.AtomicLong;

/**
 * One logical clock for every event the harness observes: a request's start is taken before it is
 * sent, its end after its answer arrived, a process's death after it is gone. Comparing ticks
 * therefore errs only towards allowing more, never towards a false failure.
 */
public final class Ticks {

  private static final AtomicLong CLOCK = new AtomicLong();

  private Ticks() {}

  public static long next() {
    return CLOCK.incrementAndGet();
  }
}
