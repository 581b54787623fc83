package dev.fvdisk.bench;

/** What one workload does, independent of who serves it. */
enum Pattern {
  RAND_READ_4K("4 KiB random reads", false, 4096, Offsets.Kind.STRIDED, false),
  SEQ_READ_1M("1 MiB sequential reads", false, 1 << 20, Offsets.Kind.SEQUENTIAL, false),
  RAND_WRITE_4K("4 KiB random writes, allocated", true, 4096, Offsets.Kind.STRIDED, false),
  /** HTTP level only: every write lands in a chunk no earlier write of the run touched. */
  RAND_WRITE_4K_FRESH(
      "4 KiB random writes, allocating, fresh image", true, 4096, Offsets.Kind.CHUNK_STRIDED, true),
  SEQ_WRITE_1M_FRESH(
      "1 MiB sequential writes, fresh image", true, 1 << 20, Offsets.Kind.SEQUENTIAL, true),
  CLONE_WRITE_4K(
      "4 KiB writes into a clone, copy-on-write", true, 4096, Offsets.Kind.BLOCK_STRIDED, true);

  /** The copy-on-write unit of clone images, for fvdisk and for the matching qcow2 overlay. */
  static final int CLONE_BLOCK_BYTES = 64 << 10;

  /** The service's default chunk, the unit in which a fresh image allocates. */
  static final int CHUNK_BYTES = 1 << 20;

  final String label;
  final boolean write;
  final int ioBytes;
  final Offsets.Kind offsets;

  /** Each repetition starts from a new image (fresh file, or new clone of the base). */
  final boolean freshImagePerRepetition;

  Pattern(
      String label,
      boolean write,
      int ioBytes,
      Offsets.Kind offsets,
      boolean freshImagePerRepetition) {
    this.label = label;
    this.write = write;
    this.ioBytes = ioBytes;
    this.offsets = offsets;
    this.freshImagePerRepetition = freshImagePerRepetition;
  }

  String id() {
    return name().toLowerCase(java.util.Locale.ROOT).replace('_', '-');
  }
}
