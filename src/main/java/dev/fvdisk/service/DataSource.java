package dev.fvdisk.service;

import java.io.IOException;
import java.nio.ByteBuffer;

/** Where a write's bytes come from, for instance a request body. */
@FunctionalInterface
public interface DataSource {

  /**
   * Reads at least one byte into {@code into} unless it has no room or the source has ended.
   *
   * @return the number of bytes read, or -1 at the end of the source
   * @throws IOException when the sender is gone (the client closed the connection)
   */
  int read(ByteBuffer into) throws IOException;
}
