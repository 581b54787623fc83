package dev.fvdisk.web;

import dev.fvdisk.service.ImageService;
import dev.fvdisk.service.InvalidRequestException;
import dev.fvdisk.service.SnapshotDescriptor;
import dev.fvdisk.service.VirtualDisk;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.net.URI;
import org.jspecify.annotations.Nullable;
import org.springframework.http.HttpHeaders;
import org.springframework.http.MediaType;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.DeleteMapping;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestHeader;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RequestMethod;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;

/**
 * Snapshots of an image: take, list, inspect, delete, and read one's bytes.
 *
 * <p>A snapshot's data is answered exactly as an image's ({@link DataReads}: whole or one range,
 * {@code HEAD}, {@code Content-Digest} on request), through a read-only {@link VirtualDisk} of the
 * snapshot ({@link ImageService#attachSnapshot}). Its entity tag names the snapshot and never
 * changes. These reads come here through Spring MVC; {@link RangeReadFilter} takes only the image's
 * own data path.
 */
@RestController
@RequestMapping("/api/v1/images/{name}/snapshots")
class SnapshotsController {

  private final ImageService images;
  private final DataReads reads;

  SnapshotsController(ImageService images, DiskStreams streams) {
    this.images = images;
    this.reads = new DataReads(streams);
  }

  @PostMapping(
      consumes = MediaType.APPLICATION_JSON_VALUE,
      produces = MediaType.APPLICATION_JSON_VALUE)
  ResponseEntity<SnapshotResponse> create(
      @PathVariable String name, @RequestBody CreateSnapshotRequest request) {
    if (request.name() == null) {
      throw new InvalidRequestException("name is required");
    }
    SnapshotDescriptor created = images.createSnapshot(name, request.name());
    return ResponseEntity.created(
            URI.create("/api/v1/images/" + name + "/snapshots/" + created.name()))
        .body(SnapshotResponse.of(created));
  }

  @GetMapping(produces = MediaType.APPLICATION_JSON_VALUE)
  SnapshotListResponse list(@PathVariable String name) {
    return new SnapshotListResponse(
        images.snapshots(name).stream().map(SnapshotResponse::of).toList());
  }

  @GetMapping(path = "/{snapshot}", produces = MediaType.APPLICATION_JSON_VALUE)
  SnapshotResponse describe(@PathVariable String name, @PathVariable String snapshot) {
    return SnapshotResponse.of(images.describeSnapshot(name, snapshot));
  }

  @DeleteMapping("/{snapshot}")
  ResponseEntity<Void> delete(@PathVariable String name, @PathVariable String snapshot) {
    images.deleteSnapshot(name, snapshot);
    return ResponseEntity.noContent().build();
  }

  /** One page of the snapshot's extent map, paged and clipped like the image's {@code /map}. */
  @GetMapping(path = "/{snapshot}/map", produces = MediaType.APPLICATION_JSON_VALUE)
  MapResponse map(
      @PathVariable String name,
      @PathVariable String snapshot,
      @RequestParam(required = false) @Nullable Long offsetBytes,
      @RequestParam(required = false) @Nullable Long lengthBytes) {
    try (VirtualDisk disk = images.attachSnapshot(name, snapshot)) {
      return MapResponse.page(disk, offsetBytes, lengthBytes, images.limits().mapPageExtents());
    }
  }

  @RequestMapping(path = "/{snapshot}/data", method = RequestMethod.HEAD)
  void head(
      @PathVariable String name, @PathVariable String snapshot, HttpServletResponse response) {
    try (VirtualDisk disk = images.attachSnapshot(name, snapshot)) {
      reads.head(disk, response);
    }
  }

  @GetMapping("/{snapshot}/data")
  void read(
      @PathVariable String name,
      @PathVariable String snapshot,
      @RequestHeader(name = HttpHeaders.RANGE, required = false) @Nullable String range,
      HttpServletRequest request,
      HttpServletResponse response)
      throws IOException {
    try (VirtualDisk disk = images.attachSnapshot(name, snapshot)) {
      reads.get(disk, range, request, response);
    }
  }
}
