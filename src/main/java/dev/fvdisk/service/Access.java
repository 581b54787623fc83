package dev.fvdisk.service;

/** What an attachment to an image may do; see {@link ImageService#attach}. */
public enum Access {
  /**
   * Reads, extents and flushes. Pins nothing: a delete ends the attachment (its next call finds the
   * image gone), and it reads on through the reopening that changes the read-only mark. Only a call
   * in progress is waited for, so a client that reads slowly never holds up a change.
   */
  READ_ONLY,

  /**
   * Writes too, while the image is not marked read-only. Pins the image: a delete, marking it
   * read-only and a shutdown wait a bounded time for the attachment to close, and a delete or the
   * mark is refused ({@link ImageAttachedException}) when it stays.
   */
  READ_WRITE
}
