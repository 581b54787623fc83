/**
 * fvdisk: virtual disks in an FVD-style compact image format, served over HTTP. {@code engine}
 * holds the storage engine (no Spring); the service, web, monitoring and config packages wrap it.
 */
@NullMarked
package dev.fvdisk;

import org.jspecify.annotations.NullMarked;
