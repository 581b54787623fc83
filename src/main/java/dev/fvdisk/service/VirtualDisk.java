package dev.fvdisk.service;

import java.nio.ByteBuffer;
import java.util.List;

/**
 * An image seen as a block device: the port every front door (HTTP today, NBD next) reads and
 * writes disks through. Obtained from {@link ImageService#attach}; closing it detaches.
 *
 * <p>An attachment holds its open image, so a call costs no look-up by name: it takes the image's
 * lock shared for its own duration, checks its arguments, and calls the engine. Writes that would
 * allocate are checked against the free space and the storage quota first (one free-space query per
 * write that allocates). What {@link Access} the attachment has decides whether it pins the image.
 *
 * <p><b>Errors.</b> Every method throws only {@link ServiceException}s: {@link
 * ImageNotFoundException} once the image was deleted (or the service closed), {@link
 * ImageReadOnlyException} for a change of an image marked read-only, {@link
 * RangeOutsideDiskException} for a range that is not inside the disk, {@link
 * InsufficientStorageException} when the space is not there (nothing was written) or ran out on the
 * way, {@link ImageUnavailableException} once the image latched after a failed flush, {@link
 * StorageIoException} and {@link ImageCorruptException} for failures underneath. Using a closed
 * attachment, or writing through a {@link Access#READ_ONLY} one, is a bug of the caller: {@link
 * IllegalStateException}.
 *
 * <p><b>Thread safety.</b> Calls may come from several threads at once, as the engine allows
 * concurrent reads and writes; the flush contract covers every write that returned before it,
 * whichever thread made it. The exceptions are {@link #holdExclusively} and {@link #close}, see
 * there.
 *
 * <p><b>Monitoring.</b> The bytes an attachment reads and writes, and the time its calls spend in
 * the engine, are reported when it closes, as one read and one write: an HTTP request attaches
 * once, so the meters count per request. Flushes are reported as they happen.
 */
public interface VirtualDisk extends AutoCloseable {

  /** The image's name; {@code image@snapshot} for a snapshot's view. */
  String name();

  /** The size of the virtual disk now; images can grow while attached. */
  long sizeBytes();

  /** Whether the image is marked read-only now. */
  boolean readOnly();

  /**
   * An opaque string that changes with every change of the image's data or settings and never
   * repeats, also across restarts. Taken before other values, it can only be stale, never newer
   * than they are.
   */
  String version();

  /**
   * Reads {@code dst.remaining()} bytes at {@code offsetBytes} into {@code dst}, advancing its
   * position. Never-written bytes read as zeros, or as the base's bytes in a clone.
   */
  void read(long offsetBytes, ByteBuffer dst);

  /**
   * Writes the remaining bytes of {@code src} at {@code offsetBytes}, consuming them. Offsets and
   * lengths need not be sector-aligned. A write that fails part-way leaves each sector with its old
   * or its new content.
   */
  void write(long offsetBytes, ByteBuffer src, Durability durability);

  /** Makes a range read as zeros without allocating storage for it. */
  void zero(long offsetBytes, long lengthBytes, Durability durability);

  /**
   * Makes every change that returned before this call durable. Allowed on every attachment and on
   * an image marked read-only.
   */
  void flush();

  /**
   * Where the bytes of {@code [offsetBytes, offsetBytes + lengthBytes)} come from, in order,
   * neighbours in the same state merged. At most {@code maxExtents}; when the list is cut short,
   * its last extent ends before the range does and the caller continues from there.
   */
  List<DiskExtent> extents(long offsetBytes, long lengthBytes, int maxExtents);

  /**
   * Checks, before any byte of a streamed write is taken from the client, that a write of the whole
   * span would be accepted now: the image is not read-only, the span is inside the disk, and the
   * space it would allocate is there. Writes inside that span through this attachment are then not
   * checked for space again, as the space for all of them was just counted.
   */
  void checkWrite(long offsetBytes, long lengthBytes);

  /**
   * Makes what follows a conditional change: waits until this attachment has the image to itself,
   * then checks its version. Until {@link #close} no other call, attachment or change reaches the
   * image, so nothing slips in between the check and the changes made through this attachment. For
   * short compare-and-set changes only; the calling thread owns the hold, and must make every
   * further call and close the attachment itself.
   *
   * @throws VersionMismatchException when the version does not match; the hold is kept until close
   */
  void holdExclusively(ExpectedVersion expected);

  /**
   * Detaches: unpins the image and releases a hold. Idempotent. Must not race with a call in
   * progress on the same attachment.
   */
  @Override
  void close();
}
