package dev.fvdisk.engine;

import java.io.IOException;
import java.io.InterruptedIOException;

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
 */
final class GroupCommit {

  /** One commit round: make everything completed before it started durable. */
  @FunctionalInterface
  interface Round {
    void run() throws IOException;
  }

  private final Round round;
  private final String description;
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
    synchronized (this) {
      ticket = ++requested;
    }
    while (true) {
      long target;
      synchronized (this) {
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
            wait();
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException(description + ": interrupted waiting for a flush");
          }
        }
        running = true;
        target = requested;
      }
      Throwable error = null;
      try {
        round.run();
      } catch (IOException | RuntimeException | Error e) {
        error = e;
      }
      synchronized (this) {
        running = false;
        if (error == null) {
          completed = target;
        } else {
          failure = error;
        }
        notifyAll();
      }
    }
  }

  /** Latches a failure found outside a round, so later commits are refused too. */
  synchronized void fail(Throwable error) {
    if (failure == null) {
      failure = error;
      notifyAll();
    }
  }

  synchronized Throwable failure() {
    return failure;
  }
}
