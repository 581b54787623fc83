package dev.fvdisk.bench;

/**
 * The offset of every operation of a run: {@code opIndex × stride} units into the disk, wrapping at
 * its end. This is exactly the sequence {@code qemu-img bench} issues with {@code -o 0 -S step}
 * (its next offset is the previous plus the step, modulo the image size), so every contender sees
 * the same offsets in the same order.
 *
 * <p>{@code qemu-img bench} cannot issue random offsets, so "random" here is a large stride: about
 * 0.618 of the disk, odd in units, so that consecutive operations land far apart and the first
 * {@code units} operations touch every unit exactly once (an odd stride is coprime with a power-of-
 * two unit count).
 */
final class Offsets {

  /** How the offsets advance. */
  enum Kind {
    /** One I/O size after another, from the start. */
    SEQUENTIAL,
    /** Scattered over the disk in units of the I/O size. */
    STRIDED,
    /**
     * Scattered over the disk in units of the clone block size, one I/O at the start of each block,
     * so every operation of a run writes into a block no earlier operation touched.
     */
    BLOCK_STRIDED,
    /**
     * Scattered over the disk in units of a chunk ({@link Pattern#CHUNK_BYTES}), one I/O at the
     * start of each, so in a fresh image every operation of a run allocates a chunk.
     */
    CHUNK_STRIDED
  }

  private static final double GOLDEN_FRACTION = 0.6180339887;

  final long unitBytes;
  final long units;
  final long strideUnits;

  private Offsets(long unitBytes, long units, long strideUnits) {
    this.unitBytes = unitBytes;
    this.units = units;
    this.strideUnits = strideUnits;
  }

  static Offsets of(Pattern pattern, long diskBytes) {
    long unitBytes =
        switch (pattern.offsets) {
          case BLOCK_STRIDED -> Pattern.CLONE_BLOCK_BYTES;
          case CHUNK_STRIDED -> Pattern.CHUNK_BYTES;
          default -> pattern.ioBytes;
        };
    return of(pattern.offsets, unitBytes, diskBytes);
  }

  /**
   * Offsets in units of {@code unitBytes}: one unit after another, or scattered (either strided
   * kind; the unit says how far apart operations may land).
   */
  static Offsets of(Kind kind, long unitBytes, long diskBytes) {
    if (diskBytes % unitBytes != 0) {
      throw new IllegalArgumentException(
          "disk size " + diskBytes + " is not a multiple of " + unitBytes + " bytes");
    }
    long units = diskBytes / unitBytes;
    long stride = 1;
    if (kind != Kind.SEQUENTIAL) {
      stride = (long) (units * GOLDEN_FRACTION) | 1;
      while (gcd(stride, units) != 1) {
        stride += 2;
      }
    }
    return new Offsets(unitBytes, units, stride);
  }

  /**
   * The same units with a stride of at most {@code maxStepBytes}, for {@code qemu-img bench}, whose
   * {@code -S} takes at most 2^31 - 1: the largest odd stride within it, coprime with the unit
   * count, so the first {@code units} operations still touch every unit once.
   */
  Offsets withStepAtMost(long maxStepBytes) {
    if (qemuStepBytes() <= maxStepBytes) {
      return this;
    }
    long stride = (maxStepBytes / unitBytes - 1) | 1;
    while (stride > 1 && gcd(stride, units) != 1) {
      stride -= 2;
    }
    return new Offsets(unitBytes, units, stride);
  }

  long offsetBytes(long opIndex) {
    return (opIndex % units) * strideUnits % units * unitBytes;
  }

  /** The {@code -S} argument that makes {@code qemu-img bench} issue the same offsets. */
  long qemuStepBytes() {
    return strideUnits * unitBytes;
  }

  private static long gcd(long a, long b) {
    return b == 0 ? a : gcd(b, a % b);
  }
}
