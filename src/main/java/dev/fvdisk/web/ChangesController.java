package dev.fvdisk.web;

import dev.fvdisk.service.ChangedRanges;
import dev.fvdisk.service.ImageService;
import java.util.List;
import org.jspecify.annotations.Nullable;
import org.springframework.http.MediaType;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;

/**
 * Changed ranges between snapshots, for incremental backups: copy a snapshot whole once, then only
 * what {@code GET /changes?from=…&to=…} lists, read from the later snapshot. Paged like the map.
 */
@RestController
class ChangesController {

  private final ImageService images;

  ChangesController(ImageService images) {
    this.images = images;
  }

  @GetMapping(path = "/api/v1/images/{name}/changes", produces = MediaType.APPLICATION_JSON_VALUE)
  ChangesResponse changes(
      @PathVariable String name,
      @RequestParam String from,
      @RequestParam(required = false) @Nullable String to,
      @RequestParam(required = false) @Nullable Long offsetBytes,
      @RequestParam(required = false) @Nullable Long lengthBytes) {
    return ChangesResponse.of(images.changes(name, from, to, offsetBytes, lengthBytes));
  }

  /** One page of changed ranges; {@code nextOffsetBytes} is null on the last page. */
  record ChangesResponse(List<ChangedExtent> extents, @Nullable Long nextOffsetBytes) {

    static ChangesResponse of(ChangedRanges page) {
      return new ChangesResponse(
          page.ranges().stream()
              .map(r -> new ChangedExtent(r.offsetBytes(), r.lengthBytes()))
              .toList(),
          page.nextOffsetBytes());
    }
  }

  /** A range whose bytes may differ. */
  record ChangedExtent(long offsetBytes, long lengthBytes) {}
}
