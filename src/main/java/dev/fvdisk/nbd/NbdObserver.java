package dev.fvdisk.nbd;

/**
 * Told what the NBD server does, so monitoring can count it without this package knowing any
 * metrics library. Calls come from connection and worker threads: they must be quick.
 */
public interface NbdObserver {

  /** Observes nothing. */
  NbdObserver NONE = new NbdObserver() {};

  /**
   * One request was answered.
   *
   * @param command the command's name, such as {@code read} or {@code write_zeroes}
   * @param nanos from when a worker took it to when its reply was sent
   * @param bytes the data it read or wrote
   * @param errno 0, or the error it was answered with
   */
  default void request(String command, long nanos, long bytes, int errno) {}

  /**
   * The server dropped a connection: {@code limit} (refused at accept), {@code timeout} (no export
   * chosen in time), {@code handshake} or {@code transmission} (the client broke the protocol
   * there).
   */
  default void connectionDropped(String reason) {}
}
