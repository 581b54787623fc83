package dev.fvdisk.service;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The lock within one process; {@code DataDirectoryLockIntegrationTest} tries two processes. */
class DataDirectoryLockTest {

  @Test
  void a_held_directory_is_refused_until_it_is_given_up(@TempDir Path dir) throws Exception {
    try (DataDirectoryLock first = DataDirectoryLock.acquire(dir)) {
      assertThatThrownBy(() -> DataDirectoryLock.acquire(dir))
          .isInstanceOf(DataDirectoryInUseException.class)
          .hasMessageContaining("in use by another fvdisk service")
          .hasMessageContaining("process " + ProcessHandle.current().pid());
    }
    try (DataDirectoryLock again = DataDirectoryLock.acquire(dir)) {
      assertThat(dir.resolve(DataDirectoryLock.FILE_NAME)).exists();
    }
    assertThat(new ImageDirectory(dir).names()).isEmpty();
  }
}
