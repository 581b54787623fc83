package dev.fvdisk.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import org.junit.jupiter.api.Test;

class PlainReadWriteLockTest {
  private final PlainReadWriteLock lock = new PlainReadWriteLock();

  @Test
  void shared_holders_do_not_wait_for_each_other() throws Exception {
    lock.lockShared();
    try {
      CountDownLatch acquired = new CountDownLatch(1);
      Thread other =
          start(
              "second-reader",
              () -> {
                lock.lockShared();
                acquired.countDown();
                lock.unlockShared();
              });
      assertThat(acquired.await(10, TimeUnit.SECONDS)).isTrue();
      other.join();
    } finally {
      lock.unlockShared();
    }
  }

  @Test
  void an_exclusive_holder_waits_for_the_last_shared_one() throws Exception {
    lock.lockShared();
    CountDownLatch held = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    Thread otherReader = holdShared(held, release);
    assertThat(held.await(10, TimeUnit.SECONDS)).isTrue();
    CountDownLatch acquired = new CountDownLatch(1);
    Thread writer = passExclusive(acquired);
    awaitParked(writer);
    lock.unlockShared();
    assertThat(acquired.await(100, TimeUnit.MILLISECONDS))
        .as("one shared holder is left")
        .isFalse();
    release.countDown();
    assertThat(acquired.await(10, TimeUnit.SECONDS)).isTrue();
    otherReader.join(10_000);
    writer.join(10_000);
  }

  @Test
  void a_new_shared_holder_queues_behind_a_waiting_exclusive_one() throws Exception {
    lock.lockShared();
    List<String> order = new ArrayList<>();
    Thread writer =
        start(
            "writer",
            () -> {
              lock.lockExclusive();
              synchronized (order) {
                order.add("exclusive");
              }
              lock.unlockExclusive();
            });
    awaitParked(writer);
    Thread reader =
        start(
            "reader",
            () -> {
              lock.lockShared();
              synchronized (order) {
                order.add("shared");
              }
              lock.unlockShared();
            });
    // Were the reader let in past the waiting writer, it would finish here, first.
    awaitParked(reader);
    lock.unlockShared();
    writer.join(10_000);
    reader.join(10_000);
    assertThat(order).containsExactly("exclusive", "shared");
  }

  @Test
  void an_exclusive_holder_keeps_everyone_else_out() throws Exception {
    lock.lockExclusive();
    CountDownLatch releaseReader = new CountDownLatch(1);
    Thread reader = holdShared(new CountDownLatch(1), releaseReader);
    awaitParked(reader);
    CountDownLatch writerIn = new CountDownLatch(1);
    Thread writer = passExclusive(writerIn);
    awaitParked(writer);
    lock.unlockExclusive();
    // The reader queued first, so it holds the lock now and the second writer waits for it.
    assertThat(writerIn.await(100, TimeUnit.MILLISECONDS)).isFalse();
    releaseReader.countDown();
    assertThat(writerIn.await(10, TimeUnit.SECONDS)).isTrue();
    reader.join(10_000);
    writer.join(10_000);
  }

  @Test
  void releasing_what_is_not_held_fails() {
    assertThatThrownBy(lock::unlockShared).isInstanceOf(IllegalMonitorStateException.class);
    assertThatThrownBy(lock::unlockExclusive).isInstanceOf(IllegalMonitorStateException.class);
  }

  @Test
  void readers_never_see_a_writer_half_way() throws Exception {
    // Volatile cells, and a pause between the two halves on both sides: without the lock a reader
    // sees a half-done update within a few rounds, so only exclusion keeps the count at zero.
    AtomicLongArray pair = new AtomicLongArray(2);
    AtomicLong torn = new AtomicLong();
    int rounds = 20_000;
    List<Thread> threads = new ArrayList<>();
    for (int w = 0; w < 2; w++) {
      threads.add(
          start(
              "writer-" + w,
              () -> {
                for (int i = 0; i < rounds; i++) {
                  lock.lockExclusive();
                  try {
                    pair.incrementAndGet(0);
                    pause();
                    pair.incrementAndGet(1);
                  } finally {
                    lock.unlockExclusive();
                  }
                }
              }));
    }
    for (int r = 0; r < 4; r++) {
      threads.add(
          start(
              "reader-" + r,
              () -> {
                for (int i = 0; i < rounds; i++) {
                  lock.lockShared();
                  try {
                    long first = pair.get(0);
                    pause();
                    if (first != pair.get(1)) {
                      torn.incrementAndGet();
                    }
                  } finally {
                    lock.unlockShared();
                  }
                }
              }));
    }
    for (Thread t : threads) {
      t.join(60_000);
      assertThat(t.isAlive()).as("%s finished", t.getName()).isFalse();
    }
    assertThat(torn.get()).isZero();
    assertThat(pair.get(0)).isEqualTo(2L * rounds).isEqualTo(pair.get(1));
  }

  private static void pause() {
    for (int i = 0; i < 50; i++) {
      Thread.onSpinWait();
    }
  }

  /** Starts a thread that takes the lock exclusively, counts {@code acquired} down and lets go. */
  private Thread passExclusive(CountDownLatch acquired) {
    return start(
        "writer",
        () -> {
          lock.lockExclusive();
          acquired.countDown();
          lock.unlockExclusive();
        });
  }

  /**
   * Starts a thread that takes the lock shared, counts {@code held} down and holds the lock until
   * {@code release} opens.
   */
  private Thread holdShared(CountDownLatch held, CountDownLatch release) {
    return start(
        "holding-reader",
        () -> {
          lock.lockShared();
          held.countDown();
          try {
            release.await();
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          } finally {
            lock.unlockShared();
          }
        });
  }

  private static Thread start(String name, Runnable body) {
    Thread t = new Thread(body, name);
    t.setDaemon(true);
    t.start();
    return t;
  }

  /** Waits until {@code t} parks in the lock's queue, or fails after 10 s. */
  private static void awaitParked(Thread t) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (t.getState() != Thread.State.WAITING) {
      assertThat(System.nanoTime()).as("%s parks", t.getName()).isLessThan(deadline);
      Thread.sleep(1);
    }
  }
}
