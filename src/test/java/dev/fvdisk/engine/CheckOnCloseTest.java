package dev.fvdisk.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/** The check-on-close extension passes sound images and fails a test that closed a damaged one. */
class CheckOnCloseTest {

  @Test
  void a_closed_sound_image_passes_and_a_damaged_one_fails_the_test() throws Exception {
    CheckOnClose extension = new CheckOnClose();
    CheckOnClose.Checked storage = extension.memory("checked");
    try (Image image = Image.create(storage, ImageOptions.builder(1 << 20).build())) {
      image.write(0, ByteBuffer.wrap(new byte[] {1, 2, 3}));
    }
    assertThat(extension.checks()).isEqualTo(1);
    extension.afterEach(null);

    // Both header slots overwritten, then closed again: the checker's problem fails the test.
    byte[] garbage = new byte[8192];
    Arrays.fill(garbage, (byte) 0x55);
    storage.reopen().write(ByteBuffer.wrap(garbage), 0);
    storage.close();
    assertThatThrownBy(() -> extension.afterEach(null))
        .isInstanceOf(AssertionError.class)
        .hasMessageContaining("checked:");
  }
}
