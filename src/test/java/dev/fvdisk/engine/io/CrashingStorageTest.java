package dev.fvdisk.engine.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.fvdisk.engine.io.CrashingStorage.CrashedException;
import dev.fvdisk.engine.io.CrashingStorage.Mode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The crash tests are only as good as their fault injector, so its survival rules are tested on
 * their own: a wrapper that kept too much would let missing forces pass unnoticed.
 */
class CrashingStorageTest {

  private static byte[] filled(int lengthBytes, int value) {
    byte[] bytes = new byte[lengthBytes];
    Arrays.fill(bytes, (byte) value);
    return bytes;
  }

  private static void write(Storage storage, long offsetBytes, byte[] bytes) throws IOException {
    storage.write(ByteBuffer.wrap(bytes), offsetBytes);
  }

  private static byte[] read(Storage storage, long offsetBytes, int lengthBytes)
      throws IOException {
    ByteBuffer buf = ByteBuffer.allocate(lengthBytes);
    storage.read(buf, offsetBytes);
    return buf.array();
  }

  /** 4 KiB of 1s, durable, as the starting point of every test. */
  private static CrashingStorage durableBase() throws IOException {
    MemoryStorage base = new MemoryStorage("base");
    write(base, 0, filled(4096, 1));
    return CrashingStorage.wrap(base);
  }

  @Test
  void power_loss_keeps_exactly_what_was_forced() throws IOException {
    CrashingStorage storage = durableBase();
    write(storage, 0, filled(512, 2));
    storage.force();
    write(storage, 512, filled(512, 3));
    storage.resize(1 << 20);
    storage.arm(Mode.LOSE_UNFORCED, 3, 0);
    assertThrows(CrashedException.class, () -> write(storage, 1024, filled(512, 4)));

    MemoryStorage survivors = storage.survivingStorage("after");
    assertEquals(4096, survivors.sizeBytes(), "the unforced resize is lost");
    assertArrayEquals(filled(512, 2), read(survivors, 0, 512));
    assertArrayEquals(filled(3584, 1), read(survivors, 512, 3584));
  }

  @Test
  void every_call_after_a_crash_throws() throws IOException {
    CrashingStorage storage = durableBase();
    storage.crashNow(Mode.LOSE_UNFORCED, 0);
    assertTrue(storage.crashed());
    assertThrows(CrashedException.class, () -> read(storage, 0, 1));
    assertThrows(CrashedException.class, () -> write(storage, 0, new byte[1]));
    assertThrows(CrashedException.class, storage::force);
    assertThrows(CrashedException.class, storage::sizeBytes);
    assertThrows(CrashedException.class, () -> storage.resize(0));
  }

  @Test
  void torn_write_lands_a_sector_prefix_and_keeps_earlier_unforced_writes() throws IOException {
    Set<Integer> landedSectorCounts = new HashSet<>();
    for (long seed = 0; seed < 40; seed++) {
      CrashingStorage storage = durableBase();
      write(storage, 3000, filled(100, 5));
      storage.arm(Mode.TEAR_WRITE, 2, seed);
      // Starts inside sector 0 and covers sectors 0 to 4.
      assertThrows(CrashedException.class, () -> write(storage, 300, filled(2000, 6)));
      MemoryStorage survivors = storage.survivingStorage("after");
      assertArrayEquals(filled(100, 5), read(survivors, 3000, 100), "earlier write survives");
      byte[] torn = read(survivors, 300, 2000);
      int landed = 0;
      while (landed < torn.length && torn[landed] == 6) {
        landed++;
      }
      for (int i = landed; i < torn.length; i++) {
        assertEquals(1, torn[i], "only a prefix lands, seed " + seed);
      }
      assertTrue(landed == 0 || (300 + landed) % 512 == 0, "tears fall on sector boundaries");
      assertTrue(landed < torn.length, "a torn write never lands whole");
      landedSectorCounts.add(landed);
    }
    assertTrue(landedSectorCounts.size() > 2, "tear points vary with the seed");
  }

  @Test
  void lost_sectors_never_show_a_later_write_over_a_lost_earlier_one() throws IOException {
    byte[] durable = filled(512, 1);
    byte[] first = filled(512, 1);
    Arrays.fill(first, 0, 100, (byte) 2);
    byte[] both = first.clone();
    Arrays.fill(both, 300, 400, (byte) 3);
    Set<String> outcomes = new HashSet<>();
    for (long seed = 0; seed < 64; seed++) {
      CrashingStorage storage = durableBase();
      write(storage, 0, filled(100, 2));
      write(storage, 300, filled(100, 3));
      storage.crashNow(Mode.KEEP_SOME_UNFORCED, seed);
      byte[] sector = read(storage.survivingStorage("after"), 0, 512);
      if (Arrays.equals(sector, durable)) {
        outcomes.add("none");
      } else if (Arrays.equals(sector, first)) {
        outcomes.add("first");
      } else if (Arrays.equals(sector, both)) {
        outcomes.add("both");
      } else {
        throw new AssertionError("seed " + seed + ": the second write landed without the first");
      }
    }
    assertEquals(Set.of("none", "first", "both"), outcomes);
  }

  @Test
  void sectors_of_one_unforced_write_survive_independently() throws IOException {
    Set<String> patterns = new HashSet<>();
    for (long seed = 0; seed < 64; seed++) {
      CrashingStorage storage = durableBase();
      write(storage, 0, filled(1024, 7));
      storage.crashNow(Mode.KEEP_SOME_UNFORCED, seed);
      MemoryStorage survivors = storage.survivingStorage("after");
      patterns.add(read(survivors, 0, 1)[0] + "/" + read(survivors, 512, 1)[0]);
    }
    assertEquals(Set.of("1/1", "7/1", "1/7", "7/7"), patterns);
  }

  @Test
  void failed_force_is_reported_and_leaves_the_storage_crashed() throws IOException {
    CrashingStorage storage = durableBase();
    storage.force();
    storage.arm(Mode.FAIL_FORCE, 2, 0);
    write(storage, 0, filled(10, 9));
    assertThrows(CrashedException.class, storage::force);
    assertTrue(storage.crashed());
    assertThrows(CrashedException.class, () -> read(storage, 0, 1));
  }

  @Test
  void a_transient_write_failure_stores_nothing_and_the_storage_keeps_working() throws IOException {
    CrashingStorage storage = durableBase();
    storage.arm(Mode.FAIL_WRITE_ONCE, 1, 0);
    assertThrows(
        CrashingStorage.InjectedWriteException.class, () -> write(storage, 0, filled(10, 9)));
    assertFalse(storage.crashed());
    assertArrayEquals(filled(10, 1), read(storage, 0, 10));
    write(storage, 0, filled(10, 8));
    assertArrayEquals(filled(10, 8), read(storage.survivingStorage("after"), 0, 10));
    assertEquals(2, storage.writeCount());
  }
}
