package dev.fvdisk.objectstore;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/** What every {@link ObjectStore} must do; each implementation's test extends this. */
abstract class ObjectStoreContract {

  /** A store whose keys do not collide with other tests' (a fresh prefix or a fresh store). */
  abstract ObjectStore store() throws Exception;

  static ByteBuffer bytes(String s) {
    return ByteBuffer.wrap(s.getBytes(StandardCharsets.UTF_8));
  }

  static String text(ByteBuffer b) {
    byte[] bytes = new byte[b.remaining()];
    b.duplicate().get(bytes);
    return new String(bytes, StandardCharsets.UTF_8);
  }

  @Test
  void objects_are_written_read_replaced_and_deleted_whole() throws Exception {
    ObjectStore store = store();
    assertThat(store.get("a/1")).isNull();
    store.put("a/1", bytes("one"));
    assertThat(text(store.get("a/1"))).isEqualTo("one");
    store.put("a/1", bytes("uno"));
    assertThat(text(store.get("a/1"))).isEqualTo("uno");
    byte[] large = new byte[3 << 20];
    new java.util.Random(7).nextBytes(large);
    store.put("a/large", ByteBuffer.wrap(large));
    ByteBuffer read = store.get("a/large");
    byte[] back = new byte[read.remaining()];
    read.get(back);
    assertThat(back).isEqualTo(large);
    store.delete("a/1");
    store.delete("a/1"); // twice is fine
    assertThat(store.get("a/1")).isNull();
  }

  @Test
  void put_if_absent_refuses_an_existing_key_and_keeps_its_object() throws Exception {
    ObjectStore store = store();
    assertThat(store.putIfAbsent("log/0001", bytes("first"))).isTrue();
    assertThat(store.putIfAbsent("log/0001", bytes("second"))).isFalse();
    assertThat(text(store.get("log/0001"))).isEqualTo("first");
  }

  @Test
  void put_if_absent_of_the_bytes_already_there_succeeds_as_a_retry_would() throws Exception {
    ObjectStore store = store();
    assertThat(store.putIfAbsent("log/0002", bytes("writer 7, record 2"))).isTrue();
    assertThat(store.putIfAbsent("log/0002", bytes("writer 7, record 2"))).isTrue();
    assertThat(store.putIfAbsent("log/0002", bytes("writer 8, record 2"))).isFalse();
    assertThat(text(store.get("log/0002"))).isEqualTo("writer 7, record 2");
  }

  @Test
  void of_writers_racing_for_a_key_exactly_one_wins() throws Exception {
    ObjectStore store = store();
    ExecutorService pool = Executors.newFixedThreadPool(8);
    try {
      for (int round = 0; round < 20; round++) {
        String key = "race/" + round;
        CountDownLatch start = new CountDownLatch(1);
        List<Future<Boolean>> results = new ArrayList<>();
        for (int w = 0; w < 8; w++) {
          String mine = "writer " + w;
          results.add(
              pool.submit(
                  () -> {
                    start.await();
                    return store.putIfAbsent(key, bytes(mine));
                  }));
        }
        start.countDown();
        List<Integer> winners = new ArrayList<>();
        for (int w = 0; w < 8; w++) {
          if (results.get(w).get()) {
            winners.add(w);
          }
        }
        assertThat(winners).as("round %d", round).hasSize(1);
        assertThat(text(store.get(key))).isEqualTo("writer " + winners.get(0));
      }
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  void put_if_tag_replaces_only_the_version_it_names() throws Exception {
    ObjectStore store = store();
    assertThat(store.putIfTag("lease/a", bytes("ghost"), "no-such-tag")).isNull();
    assertThat(store.get("lease/a")).isNull();
    String first = store.putIfTag("lease/a", bytes("A until 10"), null);
    assertThat(first).isNotNull();
    assertThat(store.putIfTag("lease/a", bytes("B until 10"), null)).isNull();
    ObjectStore.Tagged read = store.getTagged("lease/a");
    assertThat(text(read.data())).isEqualTo("A until 10");
    assertThat(read.tag()).isEqualTo(first);

    String second = store.putIfTag("lease/a", bytes("A until 20"), first);
    assertThat(second).isNotNull().isNotEqualTo(first);
    // The old tag no longer matches: a process that slept through the renewal loses.
    assertThat(store.putIfTag("lease/a", bytes("B until 30"), first)).isNull();
    assertThat(text(store.get("lease/a"))).isEqualTo("A until 20");
    // The same bytes again under a stale tag: taken for this caller's retry, as putIfAbsent does.
    assertThat(store.putIfTag("lease/a", bytes("A until 20"), first)).isEqualTo(second);
  }

  @Test
  void of_processes_racing_to_replace_one_version_exactly_one_wins() throws Exception {
    ObjectStore store = store();
    ExecutorService pool = Executors.newFixedThreadPool(8);
    try {
      String tag = store.putIfTag("lease/race", bytes("start"), null);
      for (int round = 0; round < 20; round++) {
        String expected = tag;
        CountDownLatch start = new CountDownLatch(1);
        List<Future<String>> results = new ArrayList<>();
        for (int w = 0; w < 8; w++) {
          String mine = "round " + round + " writer " + w;
          results.add(
              pool.submit(
                  () -> {
                    start.await();
                    return store.putIfTag("lease/race", bytes(mine), expected);
                  }));
        }
        start.countDown();
        List<Integer> winners = new ArrayList<>();
        for (int w = 0; w < 8; w++) {
          String won = results.get(w).get();
          if (won != null) {
            winners.add(w);
            tag = won;
          }
        }
        assertThat(winners).as("round %d", round).hasSize(1);
        ObjectStore.Tagged now = store.getTagged("lease/race");
        assertThat(text(now.data())).isEqualTo("round " + round + " writer " + winners.get(0));
        assertThat(now.tag()).isEqualTo(tag);
      }
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  void keys_are_listed_by_prefix_in_order() throws Exception {
    ObjectStore store = store();
    String p = "list-" + UUID.randomUUID() + "/";
    for (String k : List.of("b", "a", "c/1", "c/0")) {
      store.put(p + k, bytes(k));
    }
    store.put("other/" + p, bytes("x"));
    assertThat(store.list(p)).containsExactly(p + "a", p + "b", p + "c/0", p + "c/1");
    assertThat(store.list(p + "c/")).containsExactly(p + "c/0", p + "c/1");
  }
}
