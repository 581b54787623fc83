package dev.fvdisk.service;

/** What a change promises when it returns. */
public enum Durability {
  /**
   * The change is visible to every later read, and durable with the next flush of the image (or a
   * later durable change); a crash before that leaves each sector with its old or its new content.
   */
  BUFFERED,

  /**
   * The change, and every change to the image that returned before it, is on stable storage: the
   * image is flushed before the call returns (HTTP's default, NBD's FUA).
   */
  DURABLE
}
