package dev.fvdisk.service;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class FreeSpaceEstimateTest {

  private static final long GIB = 1L << 30;
  private final AtomicLong fileSystemFree = new AtomicLong(10 * GIB);
  private final AtomicInteger readings = new AtomicInteger();
  private final FreeSpaceEstimate estimate =
      new FreeSpaceEstimate(
          () -> {
            readings.incrementAndGet();
            return fileSystemFree.get();
          });

  @Test
  void far_from_the_threshold_one_reading_serves_many_writes_and_admitted_bytes_come_off_it()
      throws Exception {
    long threshold = GIB;
    assertThat(estimate.usableBytes(threshold)).isEqualTo(10 * GIB);
    for (int i = 0; i < 100; i++) {
      estimate.admitted(1 << 20);
    }
    fileSystemFree.set(9 * GIB);
    assertThat(estimate.usableBytes(threshold)).isEqualTo(10 * GIB - 100 * (1L << 20));
    assertThat(readings).hasValue(1);
  }

  @Test
  void within_the_margin_of_the_threshold_every_check_reads_the_file_system() throws Exception {
    long threshold = 10 * GIB - FreeSpaceEstimate.MARGIN_BYTES + 1;
    for (int i = 0; i < 5; i++) {
      fileSystemFree.addAndGet(-4096);
      assertThat(estimate.usableBytes(threshold)).isEqualTo(fileSystemFree.get());
    }
    assertThat(readings).hasValue(5);
  }

  @Test
  void admitted_writes_that_bring_the_estimate_near_the_threshold_make_the_next_check_read()
      throws Exception {
    long threshold = 10 * GIB - FreeSpaceEstimate.MARGIN_BYTES - (1 << 20);
    estimate.usableBytes(threshold);
    estimate.usableBytes(threshold);
    assertThat(readings).hasValue(1);
    estimate.admitted(2 << 20);
    fileSystemFree.set(5 * GIB);
    assertThat(estimate.usableBytes(threshold)).isEqualTo(5 * GIB);
    assertThat(readings).hasValue(2);
  }

  @Test
  void a_reading_older_than_its_age_is_read_again() throws Exception {
    estimate.usableBytes(0);
    fileSystemFree.set(3 * GIB);
    Thread.sleep(TimeUnit.NANOSECONDS.toMillis(FreeSpaceEstimate.MAX_AGE_NANOS) + 100);
    assertThat(estimate.usableBytes(0)).isEqualTo(3 * GIB);
    assertThat(readings).hasValue(2);
  }
}
