package dev.fvdisk.nbd;

import java.io.IOException;

/**
 * The client broke the protocol in a way that leaves no safe answer (a wrong magic, an oversized
 * option, a stream out of step): the connection is dropped, with this message in its log line.
 */
final class NbdProtocolException extends IOException {

  private static final long serialVersionUID = 1L;

  NbdProtocolException(String message) {
    super(message);
  }
}
