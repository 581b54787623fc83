/**
 * The engine's single I/O seam: positioned reads and writes, force, size and resize, with a
 * file-backed and an in-memory implementation. Tests wrap it to inject faults and crashes.
 */
@NullMarked
package dev.fvdisk.engine.io;

import org.jspecify.annotations.NullMarked;
