package dev.fvdisk.net;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.InetAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class ConnectionLimitsTest {

  private static final InetAddress A = address(10, 0, 0, 1);
  private static final InetAddress B = address(10, 0, 0, 2);

  @Test
  void admits_up_to_the_limits_over_all_and_per_address() {
    ConnectionLimits<String> limits = new ConnectionLimits<>(3, 2);
    assertThat(limits.admit("a1", A)).isNull();
    assertThat(limits.admit("a2", A)).isNull();
    assertThat(limits.admit("a3", A)).contains("from this address");
    assertThat(limits.admit("b1", B)).isNull();
    assertThat(limits.admit("b2", B)).contains("3 connections, the limit");
    assertThat(limits.open()).containsExactly("a1", "a2", "b1");

    limits.forget("a1", A);
    limits.forget("a1", A);
    assertThat(limits.size()).isEqualTo(2);
    // Forgetting twice frees one place, not two.
    assertThat(limits.admit("a4", A)).isNull();
    assertThat(limits.admit("a5", A)).isNotNull();
  }

  @Test
  void a_refused_connection_is_not_counted() {
    ConnectionLimits<String> limits = new ConnectionLimits<>(1, 1);
    assertThat(limits.admit("a1", A)).isNull();
    assertThat(limits.admit("a2", A)).isNotNull();
    limits.forget("a2", A);
    assertThat(limits.size()).isEqualTo(1);
    limits.forget("a1", A);
    assertThat(limits.admit("b1", B)).isNull();
  }

  @Test
  void close_refuses_every_later_connection_and_misses_none_admitted_before_it() throws Exception {
    for (int round = 0; round < 200; round++) {
      ConnectionLimits<Integer> limits = new ConnectionLimits<>(1000, 1000);
      Set<Integer> admitted = ConcurrentHashMap.newKeySet();
      Set<Integer> forgotten = ConcurrentHashMap.newKeySet();
      AtomicInteger next = new AtomicInteger();
      CountDownLatch start = new CountDownLatch(1);
      List<Thread> threads = new ArrayList<>();
      for (int t = 0; t < 4; t++) {
        InetAddress peer = t % 2 == 0 ? A : B;
        Thread thread =
            new Thread(
                () -> {
                  try {
                    start.await();
                  } catch (InterruptedException e) {
                    return;
                  }
                  for (int i = 0; i < 200; i++) {
                    int connection = next.incrementAndGet();
                    if (limits.admit(connection, peer) == null) {
                      admitted.add(connection);
                      if (connection % 3 == 0) {
                        limits.forget(connection, peer);
                        forgotten.add(connection);
                      }
                    }
                  }
                });
        thread.start();
        threads.add(thread);
      }
      start.countDown();
      Thread.sleep(0, 50_000);
      List<Integer> open = limits.close();
      for (Thread thread : threads) {
        thread.join();
      }
      // Every connection admitted and not yet forgotten when close ran is in its list; every one
      // admitted after it would be missing, so none may have been.
      Set<Integer> stillOpen = ConcurrentHashMap.newKeySet();
      stillOpen.addAll(admitted);
      stillOpen.removeAll(forgotten);
      assertThat(open).containsAll(stillOpen);
      assertThat(limits.admit(-1, A)).isEqualTo("the server is shutting down");
    }
  }

  private static InetAddress address(int a, int b, int c, int d) {
    try {
      return InetAddress.getByAddress(new byte[] {(byte) a, (byte) b, (byte) c, (byte) d});
    } catch (java.net.UnknownHostException e) {
      throw new IllegalStateException(e);
    }
  }
}
