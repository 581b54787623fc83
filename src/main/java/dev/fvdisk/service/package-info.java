/**
 * Use cases over the engine: the registry of open images, name rules, lifecycle changes, the
 * block-device port front doors read and write disks through, the space policy, and the service's
 * exceptions. Nothing here speaks a wire protocol: HTTP lives in {@code dev.fvdisk.web}.
 *
 * <p>{@link dev.fvdisk.service.ImageService} is the way in. Its lifecycle methods take plain
 * records; {@link dev.fvdisk.service.ImageService#attach} hands out a {@link
 * dev.fvdisk.service.VirtualDisk}, an attachment that keeps its open image so that each call costs
 * no look-up. Engine {@code IOException}s become the unchecked {@link
 * dev.fvdisk.service.ServiceException} hierarchy (one subclass per kind of problem), so nothing
 * above this package sees an engine type or a checked exception.
 *
 * <p><b>Locking.</b> Each open image carries a read-write lock. Every call on an attachment holds
 * it shared for that call only; anything that must see a stable image between a check and a change
 * (a conditional change, growing, the read-only mark, delete, check, taking or deleting a snapshot)
 * holds it exclusively. A snapshot's read-only view ({@code SnapshotDisk}) is an attachment like a
 * read-only one. Writers attached with {@link dev.fvdisk.service.Access#READ_WRITE} also pin the
 * image: delete, marking it read-only and shutdown first wait for them to detach, for a bounded
 * time, before they take the lock. The registry's monitor is taken after an image's lock, never
 * before.
 */
@NullMarked
package dev.fvdisk.service;

import org.jspecify.annotations.NullMarked;
