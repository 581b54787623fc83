/**
 * The fvdisk storage engine: virtual disks kept in FVD-style compact image files. Plain Java, no
 * framework; the service wraps it, and it could live in its own module unchanged.
 *
 * <h2>The file</h2>
 *
 * <p>An image file holds, in this order and each on a 4 KiB boundary: two copies of the {@code
 * Header}, two copies of the {@code ChunkTable}, for a clone two copies of the block {@code
 * Bitmap}, the {@code Journal}, and the data area of chunk slots. The header records every region's
 * offset, so readers never assume the order. The repository's {@code docs/format.md} gives the byte
 * layout of each structure; the javadoc of the class that reads and writes a structure carries the
 * same table.
 *
 * <h2>Glossary</h2>
 *
 * <dl>
 *   <dt>image
 *   <dd>one file holding one virtual disk and its metadata.
 *   <dt>virtual disk
 *   <dd>the linear byte space a client reads and writes; its size is a multiple of 512.
 *   <dt>sector
 *   <dd>512 bytes, the unit of crash atomicity: after a crash each sector of an unflushed write
 *       holds its old or its new content.
 *   <dt>chunk
 *   <dd>the allocation unit (default 1 MiB): one chunk table entry per virtual chunk, one slot in
 *       the data area per physical chunk.
 *   <dt>chunk table
 *   <dd>maps virtual chunks to physical chunks; unallocated chunks read as zeros.
 *   <dt>frontier
 *   <dd>the first physical chunk slot never handed out; slots are handed out in first-touch order.
 *   <dt>journal
 *   <dd>a ring of checksummed 512-byte records holding new chunk mappings, so a flush never
 *       rewrites the whole table.
 *   <dt>epoch
 *   <dd>the journal generation; a whole-table write starts a new one and older records are ignored.
 *   <dt>clean shutdown
 *   <dd>a header flag set by {@link dev.fvdisk.engine.Image#close()}; when it is clear at open, the
 *       image is treated as crashed: recovered mappings are written to a table copy and the file is
 *       cut back to its last used chunk. The journal is replayed at every open; after a clean
 *       shutdown it holds no records of the current epoch.
 *   <dt>base image, clone, block, bitmap
 *   <dd>a clone reads every block (the copy-on-write unit, default 64 KiB) it has not written from
 *       its read-only base image; the bitmap has one bit per block of the base's range, set once
 *       the block lives in the clone.
 *   <dt>copy-on-read, prefetch
 *   <dd>ways a clone copies base blocks into itself: on reading them, or in the background until it
 *       holds everything and no longer needs its base (standalone).
 *   <dt>leaked chunk
 *   <dd>a slot below the frontier that no durable mapping references, left by a crash between a
 *       data write and its journal record; found at open and handed out again before the file
 *       grows.
 * </dl>
 *
 * <h2>Invariants</h2>
 *
 * <ul>
 *   <li>A durable mapping never changes: a table entry goes from unallocated to a physical chunk
 *       once and keeps it. This is what lets journal records be replayed blindly and in any order.
 *   <li>Physical chunks are unique among mapped entries and lie inside the file.
 *   <li>Data before metadata: a mapping reaches the journal only after the data written into its
 *       slot (and the zeroing of a reused slot) has been forced.
 *   <li>A whole-table write goes to the inactive copy, is forced, and only then does a new header
 *       switch to it; a torn write of either leaves the previous state in force.
 *   <li>The clean-shutdown flag is set only after the whole table has been written and forced.
 * </ul>
 *
 * <h2>Where things are</h2>
 *
 * <p>{@link dev.fvdisk.engine.Images} creates, opens and checks image files; {@link
 * dev.fvdisk.engine.Image} is the open virtual disk, a facade that checks arguments, takes the
 * lifecycle lock and hands each call to one of its parts:
 *
 * <ul>
 *   <li>{@code CloneLayer}: every read, write, zero and extent request; copy-on-write, copy-on-read
 *       and the prefetcher's copies; for an image without a base it passes straight through;
 *   <li>{@code ChunkStore}: the image's own bytes through the chunk table, slots from the {@code
 *       ChunkAllocator};
 *   <li>{@code Committer}: the commit round behind every flush (force data, append journal records
 *       or write a checkpoint, mark clean) and every header switch, shared through {@code
 *       GroupCommit};
 *   <li>{@code Checker}: the one rule for chunk references, used by recovery at open ({@code
 *       RecoveredMetadata}), the offline check and the check of an open image;
 *   <li>{@code ImageLayout}: where a new image's regions go; {@code Header}: the header codec, from
 *       one field table; {@code RangeWalk}: the one loop that cuts a range at chunk or block
 *       boundaries.
 * </ul>
 *
 * <p>{@link dev.fvdisk.engine.ImageOptions}, {@link dev.fvdisk.engine.ImageStats} and {@link
 * dev.fvdisk.engine.CheckReport} are values; the exceptions say what went wrong. Everything else is
 * package-private.
 *
 * <h2>Lock order</h2>
 *
 * <p>A thread takes these locks only in this order, and never one it holds already:
 *
 * <ol>
 *   <li>the image's lifecycle lock: shared for reads, writes, zeros, flushes and copies from the
 *       base; exclusive for what swaps metadata or closes (grow, settings, the standalone switch,
 *       check, close). The prefetcher is stopped before close takes it, since a copy in flight
 *       needs the shared side to finish;
 *   <li>the group-commit lock, only to take a ticket or wait for a round; the round itself runs
 *       without it and takes no stripe;
 *   <li>one block stripe of the clone layer (moving a block from the base);
 *   <li>one mapping stripe of the chunk store (the first write into a chunk), and inside it the
 *       allocator's monitor;
 *   <li>the chunk store's I/O stripes: a writer holds one, exclusively; a reader holds the stripes
 *       of one run, shared, taken in ascending order.
 * </ol>
 *
 * <p>A clone reads its base (taking the base's locks, shared) while holding any of its own: a base
 * is read-only and never takes a lock of a clone, so no cycle can form.
 */
@NullMarked
package dev.fvdisk.engine;

import org.jspecify.annotations.NullMarked;
