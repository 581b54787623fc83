package dev.fvdisk.service;

import java.io.IOException;
import java.nio.ByteBuffer;

/** Where a read's bytes go, for instance a response body; writes all remaining bytes of each. */
@FunctionalInterface
public interface DataSink {

  /**
   * @throws IOException when the receiver is gone (the client closed the connection)
   */
  void write(ByteBuffer data) throws IOException;
}
