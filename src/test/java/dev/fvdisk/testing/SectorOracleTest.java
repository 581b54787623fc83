package dev.fvdisk.testing;

import static dev.fvdisk.testing.SectorOracle.Judgement.ALLOWED;
import static dev.fvdisk.testing.SectorOracle.Judgement.FOREIGN;
import static dev.fvdisk.testing.SectorOracle.Judgement.LOST;
import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The oracle's rule on a few hand-made histories, and the stamps it reads. */
class SectorOracleTest {

  record W(long id, long firstSector, long endSector, long start, long end, boolean durable)
      implements SectorOracle.Write {}

  @Test
  void a_durable_write_replaces_what_ended_before_it_started_but_not_what_overlapped_it() {
    long[] before = {SectorStamp.ZERO, SectorStamp.BASE, 7, SectorStamp.ZERO};
    W early = new W(1, 0, 4, 1, 2, false);
    W overlapping = new W(2, 0, 2, 3, 6, false);
    W durable = new W(3, 0, 2, 5, 8, true);
    W running = new W(4, 2, 4, 9, Long.MAX_VALUE, false);
    SectorOracle oracle =
        SectorOracle.of(before, List.of(early, overlapping, durable, running), W::durable);

    // Sector 0, under the durable write: it, or the write that overlapped it; not the old content
    // nor the write that had ended before it started.
    assertThat(oracle.judge(0, 3)).isEqualTo(ALLOWED);
    assertThat(oracle.judge(0, 2)).isEqualTo(ALLOWED);
    assertThat(oracle.judge(0, 1)).isEqualTo(LOST);
    assertThat(oracle.judge(0, SectorStamp.ZERO)).isEqualTo(LOST);
    assertThat(oracle.judge(1, SectorStamp.BASE)).isEqualTo(LOST);
    // Sector 2, no durable write: its old content or any write over it; a write elsewhere is not.
    assertThat(oracle.judge(2, 7)).isEqualTo(ALLOWED);
    assertThat(oracle.judge(2, 1)).isEqualTo(ALLOWED);
    assertThat(oracle.judge(2, 4)).isEqualTo(ALLOWED);
    assertThat(oracle.judge(2, 2)).isEqualTo(FOREIGN);
    assertThat(oracle.judge(3, SectorStamp.FOREIGN)).isEqualTo(FOREIGN);
    assertThat(oracle.underDurableWrite(0)).isTrue();
    assertThat(oracle.latestDurableStart(2)).isEqualTo(-1);
  }

  @Test
  void a_stamp_is_recognised_only_whole_at_its_own_place_and_image() {
    ByteBuffer two = ByteBuffer.allocate(2 * SectorStamp.SECTOR_BYTES);
    SectorStamp.fill(two, 11, 5, 100, 2);
    assertThat(SectorStamp.identify(two, 0, 100, 11, 0)).isEqualTo(5);
    assertThat(SectorStamp.identify(two, 512, 101, 11, 0)).isEqualTo(5);
    assertThat(SectorStamp.identify(two, 512, 100, 11, 0)).isEqualTo(SectorStamp.FOREIGN);
    assertThat(SectorStamp.identify(two, 0, 100, 12, 0)).isEqualTo(SectorStamp.FOREIGN);
    two.put(300, (byte) (two.get(300) ^ 1));
    assertThat(SectorStamp.identify(two, 0, 100, 11, 0)).isEqualTo(SectorStamp.FOREIGN);
    ByteBuffer base = ByteBuffer.allocate(SectorStamp.SECTOR_BYTES);
    SectorStamp.fillBase(base, 99, 7, 1);
    assertThat(SectorStamp.identify(base, 0, 7, 11, 99)).isEqualTo(SectorStamp.BASE);
    assertThat(SectorStamp.identify(base, 0, 7, 11, 0)).isEqualTo(SectorStamp.FOREIGN);
    assertThat(SectorStamp.identify(new byte[512], 0, 7, 11, 99)).isEqualTo(SectorStamp.ZERO);
  }
}
