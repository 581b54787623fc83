package dev.fvdisk.engine;

import static org.assertj.core.api.Assertions.assertThat;

import dev.fvdisk.engine.io.ForwardingStorage;
import dev.fvdisk.engine.io.MemoryStorage;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Runs the offline checker over every image a test closes: a test that leaves an image its own
 * checker calls damaged fails, even when the test's assertions passed. Register it with
 * {@code @RegisterExtension static final CheckOnClose CHECKED = new CheckOnClose();} and take
 * storage from {@link #memory} instead of {@code new MemoryStorage}.
 *
 * <p>The check runs at each close (an image closed, reopened and closed again is checked twice), on
 * the bytes as the close left them; its problems are reported when the test ends. A storage a test
 * abandons without closing, as crash tests do, is not checked here: an image that was not closed is
 * recovered at its next open, and the crash tests check that themselves.
 */
final class CheckOnClose implements AfterEachCallback {

  private final List<String> problems = new ArrayList<>();
  private int checks;

  /** A new in-memory storage whose every close is followed by a check. */
  Checked memory(String name) {
    return new Checked(new MemoryStorage(name));
  }

  @Override
  public void afterEach(ExtensionContext context) {
    List<String> found;
    synchronized (problems) {
      found = List.copyOf(problems);
      problems.clear();
      checks = 0;
    }
    assertThat(found).as("checker problems in images the test closed").isEmpty();
  }

  /** How many closes were checked in the running test; for the extension's own test. */
  int checks() {
    synchronized (problems) {
      return checks;
    }
  }

  /** Memory storage that runs the checker over itself after every close. */
  final class Checked extends ForwardingStorage {
    private final MemoryStorage memory;

    private Checked(MemoryStorage memory) {
      super(memory);
      this.memory = memory;
    }

    /** The same bytes, open again, as after a restart. */
    Checked reopen() {
      memory.reopen();
      return this;
    }

    @Override
    public void close() throws IOException {
      super.close();
      List<String> report;
      try {
        report = Images.check(memory.reopen()).problems();
      } catch (IOException | RuntimeException e) {
        report = List.of("the checker failed: " + e);
      } finally {
        memory.close();
      }
      synchronized (problems) {
        checks++;
        for (String problem : report) {
          problems.add(description() + ": " + problem);
        }
      }
    }
  }
}
