/**
 * The NBD front door: hypervisors, {@code qemu-img}, {@code nbdcopy} and the kernel's client attach
 * images as network block devices. Spring-free: {@link dev.fvdisk.nbd.NbdServer} is started and
 * stopped by the configuration, and talks to images only through the service's {@link
 * dev.fvdisk.service.VirtualDisk} port, like HTTP does.
 *
 * <p>Where a connection goes: {@code NbdServer} accepts it and holds it to the limits; {@code
 * NbdConnection} runs {@code Handshake} (options until the client picks an export) and then {@code
 * Transmission} (requests read on the connection's thread, run on shared workers, answered in
 * completion order). {@code Nbd} names the protocol's numbers. See {@code docs/nbd.md}.
 */
@NullMarked
package dev.fvdisk.nbd;

import org.jspecify.annotations.NullMarked;
