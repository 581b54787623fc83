/**
 * The HTTP face of the service: package-private controllers, the request and response records whose
 * field names the contract fixes, header parsing (ranges, entity tags), streaming of bodies, the
 * refusals only HTTP has (411, 412, 413, 416 on a header) and the one mapper that turns every error
 * into an RFC 9457 problem.
 *
 * <p>Controllers parse and check HTTP, then call {@link dev.fvdisk.service.ImageService} for the
 * lifecycle, or attach to an image and stream through its {@link dev.fvdisk.service.VirtualDisk}
 * ({@link dev.fvdisk.web.DiskStreams}); they never touch engine types or compute file offsets. An
 * entity tag is an image's version, quoted; {@code If-Match} becomes the version a change expects.
 * Plain ranged reads and writes of image data take a shortcut past Spring MVC, {@link
 * dev.fvdisk.web.RangeReadFilter} and {@link dev.fvdisk.web.RangeWriteFilter}, which answer exactly
 * as {@code DataController} would and leave every other request to it. The contract they implement
 * is the committed {@code openapi/openapi.yaml}, which is also what Swagger UI shows.
 */
@NullMarked
package dev.fvdisk.web;

import org.jspecify.annotations.NullMarked;
