package dev.fvdisk.engine;

import java.util.function.LongPredicate;

/**
 * A walk over a byte range of the virtual disk in pieces that end on multiples of a unit (a chunk
 * or a block): the one loop behind every path that cuts a request at chunk or block boundaries.
 * Callers may widen a piece over following units in the same state, or cut it short, before moving
 * on.
 *
 * <pre>{@code
 * for (RangeWalk w = new RangeWalk(offset, length, chunkSize); !w.done(); w.next()) {
 *   long physical = table.physicalChunk((int) w.unit());
 *   ... w.offsetInUnit(), w.length() ...
 * }
 * }</pre>
 *
 * <p>A mutable cursor rather than a callback, so the hot 4 KiB paths allocate nothing the JIT
 * cannot take apart, and a loop body may return or throw without ceremony.
 */
final class RangeWalk {

  private final long unitBytes;
  private final long end;
  private long position;
  private long pieceEnd;

  /**
   * @param unitBytes the unit whose multiples end the pieces; positive
   */
  RangeWalk(long offsetBytes, long lengthBytes, long unitBytes) {
    this.unitBytes = unitBytes;
    this.position = offsetBytes;
    this.end = offsetBytes + lengthBytes;
    this.pieceEnd = unitEnd(offsetBytes);
  }

  /** Whether the whole range has been walked. */
  boolean done() {
    return position >= end;
  }

  /** Where the current piece starts. */
  long position() {
    return position;
  }

  /** Where the current piece ends (exclusive). */
  long pieceEnd() {
    return pieceEnd;
  }

  /** The unit the current piece starts in. */
  long unit() {
    return position / unitBytes;
  }

  /** Where the current piece starts inside its first unit. */
  long offsetInUnit() {
    return position % unitBytes;
  }

  long length() {
    return pieceEnd - position;
  }

  /** {@link #length()} for pieces that fit a buffer, as every piece of a buffer's range does. */
  int intLength() {
    return (int) (pieceEnd - position);
  }

  /**
   * Whether the current piece covers its unit from its start to the unit's end or {@code limit}.
   */
  boolean coversWholeUnit(long limit) {
    return position % unitBytes == 0 && pieceEnd == Math.min(position + unitBytes, limit);
  }

  /**
   * Widens the piece over the following units while {@code sameState} holds for them, up to {@code
   * limit} (a unit boundary, or the end of what the state describes).
   */
  RangeWalk extendWhile(LongPredicate sameState, long limit) {
    long stop = Math.min(end, limit);
    while (pieceEnd < stop && sameState.test(pieceEnd / unitBytes)) {
      pieceEnd = Math.min(pieceEnd + unitBytes, end);
    }
    return this;
  }

  /** Widens the piece to {@code limit}, or to the end of the range if that comes first. */
  RangeWalk extendTo(long limit) {
    pieceEnd = Math.max(pieceEnd, Math.min(end, limit));
    return this;
  }

  /** Cuts the piece at {@code limit} if it reaches past it; {@code limit} lies inside the piece. */
  RangeWalk cutAt(long limit) {
    pieceEnd = Math.min(pieceEnd, limit);
    return this;
  }

  /** Moves to the piece after the current one. */
  void next() {
    position = pieceEnd;
    pieceEnd = unitEnd(position);
  }

  private long unitEnd(long from) {
    return Math.min(end, (from / unitBytes + 1) * unitBytes);
  }
}
