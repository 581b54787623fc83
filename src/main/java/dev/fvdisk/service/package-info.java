/**
 * Use cases over the engine: the registry of open images, name rules, lifecycle changes, ranged
 * reads and writes, and the application exceptions.
 *
 * <p>{@link dev.fvdisk.service.ImageService} is the only way in. It owns every open {@code Image},
 * turns engine {@code IOException}s into the unchecked {@link dev.fvdisk.service.ServiceException}
 * hierarchy (one subclass per problem type) and hands the web layer plain records, so nothing above
 * this package sees an engine type or a checked exception.
 *
 * <p><b>Locking.</b> Each open image carries a read-write lock. Plain reads take no lock (the
 * engine allows concurrent reads and writes); unconditional data writes share the lock; anything
 * that must see a stable image between a check and a change (a write with {@code If-Match},
 * growing, the read-only flag, delete, check) holds it exclusively.
 */
@NullMarked
package dev.fvdisk.service;

import org.jspecify.annotations.NullMarked;
