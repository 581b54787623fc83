package dev.fvdisk.bench;

/** What one workload does, independent of who serves it. */
enum Pattern {
  RAND_READ_4K("4 KiB random reads", false, 4096, Offsets.Kind.STRIDED, false),
  SEQ_READ_1M("1 MiB sequential reads", false, 1 << 20, Offsets.Kind.SEQUENTIAL, false),
  RAND_WRITE_4K("4 KiB random writes, allocated", true, 4096, Offsets.Kind.STRIDED, false),
  SEQ_WRITE_1M_FRESH(
      "1 MiB sequential writes, fresh image", true, 1 << 20, Offsets.Kind.SEQUENTIAL, true),
  CLONE_WRITE_4K(
      "4 KiB writes into a clone, copy-on-write", true, 4096, Offsets.Kind.BLOCK_STRIDED, true);

  /** The copy-on-write unit of clone images, for fvdisk and for the matching qcow2 overlay. */
  static final int CLONE_BLOCK_BYTES = 64 << 10;

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
