package dev.fvdisk.web;

import dev.fvdisk.service.DataSource;
import dev.fvdisk.service.DataState;
import dev.fvdisk.service.ImageService;
import dev.fvdisk.service.InvalidRequestException;
import dev.fvdisk.service.InvalidValueException;
import dev.fvdisk.service.LengthRequiredException;
import dev.fvdisk.service.RangeNotSatisfiableException;
import dev.fvdisk.service.UnalignedDataException;
import jakarta.servlet.ServletInputStream;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.util.List;
import org.jspecify.annotations.Nullable;
import org.springframework.http.HttpHeaders;
import org.springframework.http.HttpStatus;
import org.springframework.http.MediaType;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PatchMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PutMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestHeader;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RequestMethod;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;

/**
 * The data plane: byte ranges, sectors, zero and flush operations, and the extent map.
 *
 * <p>Bodies stream through the servlet streams in both directions, one pooled direct buffer at a
 * time (the servlet streams' {@code ByteBuffer} methods), so no request or answer is held in memory
 * and no body is copied through a heap array. Every check runs before the first byte moves, so a
 * refused request leaves the image as it was and gets a problem answer.
 *
 * <p>Most ranged {@code GET}s of {@code /data} never get here: {@link RangeReadFilter} answers them
 * ahead of Spring MVC with the same {@link DataAnswer}, and passes on the ones it is unsure of,
 * which {@link #read} answers.
 */
@RestController
@RequestMapping("/api/v1/images/{name}")
class DataController {

  private static final long SECTOR_BYTES = 512;
  private static final String ALLOW = "OPTIONS, HEAD, GET, PUT, PATCH";
  private static final List<String> FEATURES = List.of("zero", "flush", "extents", "sectors");

  private final ImageService images;

  DataController(ImageService images) {
    this.images = images;
  }

  @RequestMapping(path = "/data", method = RequestMethod.HEAD)
  void head(@PathVariable String name, HttpServletResponse response) {
    DataState image = images.dataState(name);
    DataAnswer.dataHeaders(response, image);
    response.setContentLengthLong(image.sizeBytes());
    response.setStatus(HttpStatus.OK.value());
  }

  @GetMapping("/data")
  void read(
      @PathVariable String name,
      @RequestHeader(name = HttpHeaders.RANGE, required = false) @Nullable String range,
      HttpServletResponse response)
      throws IOException {
    DataState image = images.dataState(name);
    ByteRanges.Span span = ByteRanges.parseRange(range, image.sizeBytes());
    if (span == null) {
      ByteRanges.Span disk = new ByteRanges.Span(0, image.sizeBytes());
      send(name, disk, DataAnswer.ok(response, image, disk));
    } else {
      send(name, span, DataAnswer.range(response, image, span));
    }
  }

  /**
   * The body is taken as raw bytes. {@code curl --data-binary @disk.raw}, the first thing many
   * people type, labels it {@code application/x-www-form-urlencoded}; it is taken as raw bytes too,
   * since a form is never what a data write means.
   */
  @PutMapping(
      path = "/data",
      consumes = {
        MediaType.APPLICATION_OCTET_STREAM_VALUE,
        MediaType.APPLICATION_FORM_URLENCODED_VALUE
      })
  ResponseEntity<Void> write(
      @PathVariable String name,
      @RequestHeader(name = HttpHeaders.CONTENT_RANGE, required = false)
          @Nullable String contentRange,
      @RequestHeader(name = HttpHeaders.IF_MATCH, required = false) @Nullable String ifMatch,
      @RequestParam(defaultValue = "true") boolean flush,
      HttpServletRequest request)
      throws IOException {
    DataState image = images.dataState(name);
    ByteRanges.Span span =
        ByteRanges.parseWrite(contentRange, request.getContentLengthLong(), image.sizeBytes());
    return writeBody(name, span, request, flush, ifMatch);
  }

  @PatchMapping(path = "/data", consumes = MediaType.APPLICATION_JSON_VALUE)
  ResponseEntity<Void> operate(
      @PathVariable String name,
      @RequestBody DataOperationRequest operation,
      @RequestHeader(name = HttpHeaders.IF_MATCH, required = false) @Nullable String ifMatch,
      @RequestParam(defaultValue = "true") boolean flush) {
    if (operation.op() == null) {
      throw new InvalidRequestException("op is required: \"zero\" or \"flush\"");
    }
    switch (operation.op()) {
      case "zero" -> {
        if (operation.offsetBytes() == null || operation.lengthBytes() == null) {
          throw new InvalidRequestException("the zero operation needs offsetBytes and lengthBytes");
        }
        boolean durable = flush && !Boolean.FALSE.equals(operation.flush());
        images.zero(
            name,
            operation.offsetBytes(),
            operation.lengthBytes(),
            durable,
            EntityTags.parseIfMatch(ifMatch));
      }
      case "flush" -> {
        if (operation.offsetBytes() != null
            || operation.lengthBytes() != null
            || operation.flush() != null) {
          throw new InvalidRequestException("the flush operation takes no other fields");
        }
        images.flush(name, EntityTags.parseIfMatch(ifMatch));
      }
      default ->
          throw new InvalidRequestException(
              "unknown op \"" + operation.op() + "\"; expected \"zero\" or \"flush\"");
    }
    return noContentWithEtag(name);
  }

  @RequestMapping(
      path = "/data",
      method = RequestMethod.OPTIONS,
      produces = MediaType.APPLICATION_JSON_VALUE)
  ResponseEntity<DataOptionsResponse> options(@PathVariable String name) {
    images.describe(name);
    return ResponseEntity.ok()
        .header(HttpHeaders.ALLOW, ALLOW)
        .body(new DataOptionsResponse(FEATURES, images.limits().maxWriteBytes()));
  }

  @GetMapping("/sectors/{firstSector}")
  void readSectors(
      @PathVariable String name,
      @PathVariable long firstSector,
      @RequestParam long count,
      HttpServletResponse response)
      throws IOException {
    if (count < 1) {
      throw new InvalidValueException("count must be at least 1, was " + count);
    }
    DataState image = images.dataState(name);
    ByteRanges.Span span = sectorSpan(firstSector, count, image.sizeBytes());
    send(name, span, DataAnswer.ok(response, image, span));
  }

  @PutMapping(
      path = "/sectors/{firstSector}",
      consumes = {
        MediaType.APPLICATION_OCTET_STREAM_VALUE,
        MediaType.APPLICATION_FORM_URLENCODED_VALUE
      })
  ResponseEntity<Void> writeSectors(
      @PathVariable String name,
      @PathVariable long firstSector,
      @RequestHeader(name = HttpHeaders.IF_MATCH, required = false) @Nullable String ifMatch,
      @RequestParam(defaultValue = "true") boolean flush,
      HttpServletRequest request)
      throws IOException {
    long lengthBytes = request.getContentLengthLong();
    if (lengthBytes < 0) {
      throw new LengthRequiredException("a sector write needs Content-Length");
    }
    if (lengthBytes == 0 || lengthBytes % SECTOR_BYTES != 0) {
      throw new UnalignedDataException(lengthBytes);
    }
    DataState image = images.dataState(name);
    ByteRanges.Span span = sectorSpan(firstSector, lengthBytes / SECTOR_BYTES, image.sizeBytes());
    return writeBody(name, span, request, flush, ifMatch);
  }

  @GetMapping(path = "/map", produces = MediaType.APPLICATION_JSON_VALUE)
  MapResponse map(
      @PathVariable String name,
      @RequestParam(required = false) @Nullable Long offsetBytes,
      @RequestParam(required = false) @Nullable Long lengthBytes) {
    return MapResponse.of(images.map(name, offsetBytes, lengthBytes));
  }

  private void send(String name, ByteRanges.Span span, DataAnswer answer) throws IOException {
    images.read(name, span.offsetBytes(), span.lengthBytes(), answer);
    answer.finish();
  }

  private static ByteRanges.Span sectorSpan(long firstSector, long count, long sizeBytes) {
    long diskSectors = sizeBytes / SECTOR_BYTES;
    if (firstSector < 0 || firstSector >= diskSectors || count > diskSectors - firstSector) {
      throw new RangeNotSatisfiableException(
          count
              + " sector(s) from sector "
              + firstSector
              + " are not inside the disk of "
              + diskSectors
              + " sectors",
          sizeBytes);
    }
    return new ByteRanges.Span(firstSector * SECTOR_BYTES, count * SECTOR_BYTES);
  }

  private ResponseEntity<Void> noContentWithEtag(String name) {
    return ResponseEntity.noContent().eTag(EntityTags.quote(images.dataState(name).etag())).build();
  }

  /**
   * The request body as the service reads it: bytes land at the buffer's position, which then
   * advances past them, as with NIO channels. Servlet 6.1's {@code read(ByteBuffer)} in Tomcat
   * instead leaves the position where it was and sets the limit after the new bytes; this restores
   * channel semantics, and is harmless for a container that already follows them.
   */
  private static DataSource body(ServletInputStream in) {
    return into -> {
      int start = into.position();
      int limit = into.limit();
      int n = in.read(into);
      into.limit(limit).position(start + Math.max(n, 0));
      return n;
    };
  }

  /** Streams the request body into the span; the answer carries the image's new entity tag. */
  private ResponseEntity<Void> writeBody(
      String name,
      ByteRanges.Span span,
      HttpServletRequest request,
      boolean flush,
      @Nullable String ifMatch)
      throws IOException {
    images.write(
        name,
        span.offsetBytes(),
        span.lengthBytes(),
        body(request.getInputStream()),
        flush,
        EntityTags.parseIfMatch(ifMatch));
    return noContentWithEtag(name);
  }
}
