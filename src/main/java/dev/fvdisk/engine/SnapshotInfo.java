package dev.fvdisk.engine;

/**
 * A snapshot of an image, as {@link Image#snapshots} lists it.
 *
 * @param id its number in the image: ascending with age and never given twice, so with the image's
 *     id it names this snapshot for good, also after one of the same name replaced it
 * @param createdAtMillis when it was taken, in milliseconds since the epoch
 * @param sizeBytes the virtual size it reads as: the image's when it was taken
 * @param exclusiveBytes chunk bytes only this snapshot holds: what deleting it frees
 */
public record SnapshotInfo(
    int id, String name, long createdAtMillis, long sizeBytes, long exclusiveBytes) {}
