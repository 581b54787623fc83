package dev.fvdisk.web;

import dev.fvdisk.security.ImageScope;
import dev.fvdisk.service.CreateImageCommand;
import dev.fvdisk.service.ImageChanges;
import dev.fvdisk.service.ImageDescriptor;
import dev.fvdisk.service.ImageService;
import dev.fvdisk.service.InvalidRequestException;
import java.net.URI;
import org.jspecify.annotations.Nullable;
import org.springframework.http.HttpHeaders;
import org.springframework.http.MediaType;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.DeleteMapping;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PatchMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestHeader;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;

/** Image lifecycle: create, list, inspect, patch, delete, check. */
@RestController
@RequestMapping(path = "/api/v1/images", produces = MediaType.APPLICATION_JSON_VALUE)
class ImagesController {

  static final String MERGE_PATCH_JSON = "application/merge-patch+json";

  private final ImageService images;
  private final ImageScope scope;

  ImagesController(ImageService images, ImageScope scope) {
    this.images = images;
    this.scope = scope;
  }

  @PostMapping(consumes = MediaType.APPLICATION_JSON_VALUE)
  ResponseEntity<ImageResponse> create(@RequestBody CreateImageRequest request) {
    if (request.name() == null) {
      throw new InvalidRequestException("name is required");
    }
    // The filter chain checked the role; the names in the body only the controller can see.
    scope.checkCreate(request.name(), request.base());
    PrefetchSettings prefetch = request.prefetch();
    ImageDescriptor created =
        images.create(
            new CreateImageCommand(
                request.name(),
                request.sizeBytes(),
                request.base(),
                request.chunkSizeBytes(),
                request.blockSizeBytes(),
                request.copyOnRead(),
                prefetch == null ? null : prefetch.enabled(),
                prefetch == null ? null : prefetch.startDelaySeconds()));
    return ResponseEntity.created(URI.create("/api/v1/images/" + created.name()))
        .eTag(EntityTags.quote(created.version()))
        .body(ImageResponse.of(created));
  }

  @GetMapping
  ImageListResponse list() {
    return new ImageListResponse(
        images.list().stream()
            .filter(image -> scope.permits(image.name()))
            .map(ImageResponse::of)
            .toList());
  }

  @GetMapping("/{name}")
  ResponseEntity<ImageResponse> describe(@PathVariable String name) {
    return withEtag(images.describe(name));
  }

  @PatchMapping(
      path = "/{name}",
      consumes = {MERGE_PATCH_JSON, MediaType.APPLICATION_JSON_VALUE})
  ResponseEntity<ImageResponse> patch(
      @PathVariable String name,
      @RequestBody PatchImageRequest patch,
      @RequestHeader(name = HttpHeaders.IF_MATCH, required = false) @Nullable String ifMatch) {
    PrefetchSettings prefetch = patch.prefetch();
    ImageChanges changes =
        new ImageChanges(
            patch.sizeBytes(),
            patch.readOnly(),
            patch.copyOnRead(),
            prefetch == null ? null : prefetch.enabled(),
            prefetch == null ? null : prefetch.startDelaySeconds());
    return withEtag(images.update(name, changes, EntityTags.parseIfMatch(ifMatch)));
  }

  @DeleteMapping("/{name}")
  ResponseEntity<Void> delete(
      @PathVariable String name,
      @RequestHeader(name = HttpHeaders.IF_MATCH, required = false) @Nullable String ifMatch) {
    images.delete(name, EntityTags.parseIfMatch(ifMatch));
    return ResponseEntity.noContent().build();
  }

  @PostMapping("/{name}/check")
  CheckResponse check(
      @PathVariable String name, @RequestParam(defaultValue = "false") boolean repair) {
    return CheckResponse.of(images.check(name, repair));
  }

  private static ResponseEntity<ImageResponse> withEtag(ImageDescriptor descriptor) {
    return ResponseEntity.ok()
        .eTag(EntityTags.quote(descriptor.version()))
        .body(ImageResponse.of(descriptor));
  }
}
