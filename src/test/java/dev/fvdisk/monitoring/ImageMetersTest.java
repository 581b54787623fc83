package dev.fvdisk.monitoring;

import static org.assertj.core.api.Assertions.assertThat;

import dev.fvdisk.service.ImageUsage;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/** Per-image meters come and go with the image; timers and summaries count what they are told. */
class ImageMetersTest {

  private static ImageUsage usage(String name, long used, boolean hasBase) {
    return new ImageUsage(
        name, 1 << 20, used, 3 * 65536, 4 << 20, 2, 0.25, 0, hasBase, 10, 40, false, false);
  }

  @Test
  void per_image_meters_follow_the_image_and_read_its_current_figures() {
    SimpleMeterRegistry registry = new SimpleMeterRegistry();
    ImageMeters meters = new ImageMeters(registry);
    AtomicReference<ImageUsage> current = new AtomicReference<>(usage("vm", 65536, false));

    meters.imageOpened("vm", current::get);
    assertThat(registry.get("fvdisk.image.used").tag("image", "vm").gauge().value())
        .isEqualTo(65536);
    assertThat(registry.get("fvdisk.image.snapshot").tag("image", "vm").gauge().value())
        .isEqualTo(3 * 65536);
    assertThat(registry.get("fvdisk.image.leaked.chunks").tag("image", "vm").gauge().value())
        .isEqualTo(2);
    assertThat(registry.get("fvdisk.image.journal.used").tag("image", "vm").gauge().value())
        .isEqualTo(0.25);
    assertThat(registry.find("fvdisk.image.prefetch.progress").gauges()).isEmpty();

    current.set(usage("vm", 131072, false));
    assertThat(registry.get("fvdisk.image.used").tag("image", "vm").gauge().value())
        .isEqualTo(131072);

    AtomicReference<ImageUsage> again = new AtomicReference<>(usage("vm", 7 * 65536, false));
    meters.imageOpened("vm", again::get);
    assertThat(registry.get("fvdisk.image.used").tag("image", "vm").gauge().value())
        .isEqualTo(7 * 65536);

    meters.imageClosed("vm");
    assertThat(registry.find("fvdisk.image.used").tag("image", "vm").gauge()).isNull();
    assertThat(registry.find("fvdisk.image.snapshot").tag("image", "vm").gauge()).isNull();

    meters.imageOpened("clone", () -> usage("clone", 0, true));
    assertThat(registry.get("fvdisk.image.prefetch.progress").tag("image", "clone").gauge().value())
        .isEqualTo(0.25);
  }

  @Test
  void data_path_timings_land_in_timers_and_byte_summaries() {
    SimpleMeterRegistry registry = new SimpleMeterRegistry();
    ImageMeters meters = new ImageMeters(registry);
    meters.read(4096, 1_000_000);
    meters.written(512, 2_000_000);
    meters.flushed(3_000_000);
    assertThat(registry.get("fvdisk.io.read").timer().count()).isEqualTo(1);
    assertThat(registry.get("fvdisk.io.read.bytes").summary().totalAmount()).isEqualTo(4096);
    assertThat(registry.get("fvdisk.io.write").timer().totalTime(TimeUnit.MILLISECONDS))
        .isEqualTo(2);
    assertThat(registry.get("fvdisk.io.write.bytes").summary().totalAmount()).isEqualTo(512);
    assertThat(registry.get("fvdisk.io.flush").timer().count()).isEqualTo(1);
  }
}
