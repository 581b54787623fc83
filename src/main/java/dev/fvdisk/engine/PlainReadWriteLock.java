package dev.fvdisk.engine;

import java.util.concurrent.locks.AbstractQueuedSynchronizer;

/**
 * A read-write lock for the engine's hot paths: shared holders only count, exclusive holders
 * exclude everyone, and a new shared holder queues behind any thread already waiting, so steady
 * reads cannot starve an exclusive operation.
 *
 * <p>Unlike {@link java.util.concurrent.locks.ReentrantReadWriteLock} it keeps no per-thread hold
 * counts. Those cost a thread-local lookup on each lock and unlock once more than one thread reads,
 * which at 16 concurrent 4 KiB reads was a measurable part of each read. The price is that the lock
 * is not reentrant: a thread that takes it twice, even shared, can deadlock behind a waiting
 * exclusive holder. Callers take it once per operation and call nothing that takes it again.
 */
final class PlainReadWriteLock {
  private final Sync sync = new Sync();

  void lockShared() {
    sync.acquireShared(1);
  }

  void unlockShared() {
    sync.releaseShared(1);
  }

  void lockExclusive() {
    sync.acquire(1);
  }

  void unlockExclusive() {
    sync.release(1);
  }

  /** The state is the number of shared holders, or {@link #EXCLUSIVE}. */
  private static final class Sync extends AbstractQueuedSynchronizer {
    private static final int EXCLUSIVE = -1;

    @Override
    protected int tryAcquireShared(int ignored) {
      while (true) {
        int state = getState();
        // Queued threads go first: a waiting exclusive holder must not wait for ever.
        if (state == EXCLUSIVE || hasQueuedPredecessors()) {
          return -1;
        }
        if (compareAndSetState(state, state + 1)) {
          return 1;
        }
      }
    }

    @Override
    protected boolean tryReleaseShared(int ignored) {
      while (true) {
        int state = getState();
        if (state <= 0) {
          throw new IllegalMonitorStateException("shared lock released but not held");
        }
        if (compareAndSetState(state, state - 1)) {
          return state == 1; // the last shared holder wakes a waiting exclusive one
        }
      }
    }

    @Override
    protected boolean tryAcquire(int ignored) {
      if (getState() == 0 && !hasQueuedPredecessors() && compareAndSetState(0, EXCLUSIVE)) {
        setExclusiveOwnerThread(Thread.currentThread());
        return true;
      }
      return false;
    }

    @Override
    protected boolean tryRelease(int ignored) {
      if (getExclusiveOwnerThread() != Thread.currentThread()) {
        throw new IllegalMonitorStateException(
            "exclusive lock released by a thread not holding it");
      }
      setExclusiveOwnerThread(null);
      setState(0);
      return true;
    }
  }
}
