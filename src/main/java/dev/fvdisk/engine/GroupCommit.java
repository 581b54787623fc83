package dev.fvdisk.engine;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Lets concurrent callers share one commit round, so that N writers waiting for durability cost one
 * force (or two, when mappings must be journalled) instead of N.
 *
 * <p>Each caller takes a ticket. A round started after a ticket was taken covers everything its
 * holder did before asking, so the holder returns as soon as such a round completes. At most one
 * round runs at a time; whoever finds none running starts the next one, covering every ticket
 * issued so far.
 *
 * <p>A failed round latches: every later call throws, because after a failed force the kernel may
 * have dropped the data it could not write, and a retry could report success for lost data.
 *
 * <p>A lock and condition rather than a monitor: on Java 21 to 23 a virtual thread waiting in
 * {@code Object.wait} holds its carrier thread, and sixteen durable writers would hold them all.
 */
final class GroupCommit {

  /** One commit round: make everything completed before it started durable. */
  @FunctionalInterface
  interface Round {
    void run() throws IOException;
  }

  private final Round round;
  private final String description;
  private final ReentrantLock lock = new ReentrantLock();
  private final Condition roundEnded = lock.newCondition();
  private long requested;
  private long completed;
  private boolean running;
  private Throwable failure;

  GroupCommit(String description, Round round) {
    this.description = description;
    this.round = round;
  }

  /** Returns once a round that started after this call has completed. */
  void commit() throws IOException {
    long ticket;
    lock.lock();
    try {
      ticket = ++requested;
    } finally {
      lock.unlock();
    }
    while (true) {
      long target;
      lock.lock();
      try {
        while (true) {
          if (failure != null) {
            throw new ImageFailedException(description, failure);
          }
          if (completed >= ticket) {
            return;
          }
          if (!running) {
            break;
          }
          try {
            roundEnded.await();
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException(description + ": interrupted waiting for a flush");
          }
        }
        running = true;
        target = requested;
      } finally {
        lock.unlock();
      }
      Throwable error = null;
      try {
        round.run();
      } catch (IOException | RuntimeException | Error e) {
        error = e;
      }
      lock.lock();
      try {
        running = false;
        if (error == null) {
          completed = target;
        } else {
          failure = error;
        }
        roundEnded.signalAll();
      } finally {
        lock.unlock();
      }
    }
  }

  /** Latches a failure found outside a round, so later commits are refused too. */
  void fail(Throwable error) {
    lock.lock();
    try {
      if (failure == null) {
        failure = error;
        roundEnded.signalAll();
      }
    } finally {
      lock.unlock();
    }
  }

  Throwable failure() {
    lock.lock();
    try {
      return failure;
    } finally {
      lock.unlock();
    }
  }
}
