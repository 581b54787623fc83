/**
 * The persistence ports of the engine: what an image needs from wherever its bytes live, above any
 * notion of files or offsets. The engine reads and writes chunk data through {@link
 * dev.fvdisk.engine.spi.ChunkData} and makes its metadata durable through {@link
 * dev.fvdisk.engine.spi.MetadataLog}; a commit round seals the data, then appends a {@link
 * dev.fvdisk.engine.spi.CommitBatch} (or writes a {@link dev.fvdisk.engine.spi.Checkpoint} when the
 * log is full), then marks what it covered clean.
 *
 * <p>The engine's own implementation keeps both in one local image file, byte for byte in the v1
 * format; another back end (an object store) implements the same two interfaces. A back end that
 * has lost its right to write says so with {@link dev.fvdisk.engine.spi.FencedException}, and the
 * engine latches the image as it does after a failed force.
 */
@NullMarked
package dev.fvdisk.engine.spi;

import org.jspecify.annotations.NullMarked;
