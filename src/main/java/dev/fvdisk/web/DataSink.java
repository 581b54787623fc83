package dev.fvdisk.web;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Where {@link DiskStreams} sends the bytes of a read: the servlet answer ({@link DataAnswer}) or
 * the data port's ({@link DataPortConnection}). The status and headers go out with the first bytes,
 * so a read that fails before it has any can still be answered with a problem.
 */
interface DataSink {

  /**
   * Adds a {@code Content-Digest} header (RFC 9530) of the whole body; before the answer starts.
   */
  void contentDigest(String field);

  /**
   * Sends all remaining bytes of {@code data}, starting the answer with the first ones.
   *
   * @throws IOException when the client went away
   */
  void write(ByteBuffer data) throws IOException;

  /**
   * Sends the status, the headers and every byte written so far, starting the answer if need be.
   */
  void flush() throws IOException;
}
