/**
 * Socket plumbing the listeners share: the NBD server ({@code dev.fvdisk.nbd}) and the data port
 * ({@code dev.fvdisk.web}). Plain Java; it knows nothing of either protocol.
 */
@NullMarked
package dev.fvdisk.net;

import org.jspecify.annotations.NullMarked;
