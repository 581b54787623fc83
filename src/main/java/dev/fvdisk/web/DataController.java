package dev.fvdisk.web;

import dev.fvdisk.service.Access;
import dev.fvdisk.service.Durability;
import dev.fvdisk.service.ExpectedVersion;
import dev.fvdisk.service.ImageService;
import dev.fvdisk.service.InvalidRequestException;
import dev.fvdisk.service.InvalidValueException;
import dev.fvdisk.service.UnalignedDataException;
import dev.fvdisk.service.VirtualDisk;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.util.List;
import org.jspecify.annotations.Nullable;
import org.springframework.http.HttpHeaders;
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
 * <p>Each request attaches to its image for its own duration ({@link ImageService#attach}) and
 * works on the {@link VirtualDisk}: reads attach read-only, so a slow reader never holds up a
 * delete; writes attach read-write, which pins the image until the answer is ready. Bodies stream
 * through {@link DiskStreams} in both directions. Every check runs before the first byte moves, so
 * a refused request leaves the image as it was and gets a problem answer.
 *
 * <p>Most ranged {@code GET}s of {@code /data} never get here: {@link RangeReadFilter} answers them
 * ahead of Spring MVC with the same {@link DataAnswer}, and passes on the ones it is unsure of,
 * which {@link #read} answers. Likewise most ranged {@code PUT}s are written by {@link
 * RangeWriteFilter}, and {@link #write} takes the rest.
 *
 * <p>Digests (RFC 9530): a read that sends {@code Want-Content-Digest} gets a {@code
 * Content-Digest} of its body (see {@link DataReads} and {@link DiskStreams#read(VirtualDisk,
 * ByteRanges.Span, DataAnswer, DigestAlgorithm)}), and a write that sends {@code Content-Digest} is
 * checked against it before anything is written ({@link StagedWrite}).
 */
@RestController
@RequestMapping("/api/v1/images/{name}")
class DataController {

  private static final long SECTOR_BYTES = 512;
  private static final String ALLOW = "OPTIONS, HEAD, GET, PUT, PATCH";
  private static final List<String> FEATURES = List.of("zero", "flush", "extents", "sectors");

  private final ImageService images;
  private final DiskStreams streams;
  private final DataReads reads;

  DataController(ImageService images, DiskStreams streams) {
    this.images = images;
    this.streams = streams;
    this.reads = new DataReads(streams);
  }

  @RequestMapping(path = "/data", method = RequestMethod.HEAD)
  void head(@PathVariable String name, HttpServletResponse response) {
    try (VirtualDisk disk = images.attach(name, Access.READ_ONLY)) {
      reads.head(disk, response);
    }
  }

  @GetMapping("/data")
  void read(
      @PathVariable String name,
      @RequestHeader(name = HttpHeaders.RANGE, required = false) @Nullable String range,
      HttpServletRequest request,
      HttpServletResponse response)
      throws IOException {
    try (VirtualDisk disk = images.attach(name, Access.READ_ONLY)) {
      reads.get(disk, range, request, response);
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
    try (VirtualDisk disk = images.attach(name, Access.READ_WRITE)) {
      ByteRanges.Span span =
          ByteRanges.parseWrite(contentRange, request.getContentLengthLong(), disk.sizeBytes());
      return writeBody(disk, span, request, flush, ifMatch);
    }
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
        Long offsetBytes = operation.offsetBytes();
        Long lengthBytes = operation.lengthBytes();
        if (offsetBytes == null || lengthBytes == null) {
          throw new InvalidRequestException("the zero operation needs offsetBytes and lengthBytes");
        }
        boolean durable = flush && !Boolean.FALSE.equals(operation.flush());
        ExpectedVersion expected = EntityTags.parseIfMatch(ifMatch);
        try (VirtualDisk disk = images.attach(name, Access.READ_WRITE)) {
          holdIf(disk, expected);
          disk.zero(offsetBytes, lengthBytes, durable ? Durability.DURABLE : Durability.BUFFERED);
          return noContentWithEtag(disk);
        }
      }
      case "flush" -> {
        if (operation.offsetBytes() != null
            || operation.lengthBytes() != null
            || operation.flush() != null) {
          throw new InvalidRequestException("the flush operation takes no other fields");
        }
        ExpectedVersion expected = EntityTags.parseIfMatch(ifMatch);
        try (VirtualDisk disk = images.attach(name, Access.READ_ONLY)) {
          holdIf(disk, expected);
          disk.flush();
          return noContentWithEtag(disk);
        }
      }
      default ->
          throw new InvalidRequestException(
              "unknown op \"" + operation.op() + "\"; expected \"zero\" or \"flush\"");
    }
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
      HttpServletRequest request,
      HttpServletResponse response)
      throws IOException {
    if (count < 1) {
      throw new InvalidValueException("count must be at least 1, was " + count);
    }
    try (VirtualDisk disk = images.attach(name, Access.READ_ONLY)) {
      DataState image = DataState.of(disk);
      ByteRanges.Span span = sectorSpan(firstSector, count, image.sizeBytes());
      reads.send(disk, span, DataAnswer.ok(response, image, span), request);
    }
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
    try (VirtualDisk disk = images.attach(name, Access.READ_WRITE)) {
      ByteRanges.Span span = sectorSpan(firstSector, lengthBytes / SECTOR_BYTES, disk.sizeBytes());
      return writeBody(disk, span, request, flush, ifMatch);
    }
  }

  /**
   * One page of the extent map of {@code [offsetBytes, offsetBytes + lengthBytes)}; both default to
   * the whole disk, and like a byte range, a span that ends past the disk is clipped.
   */
  @GetMapping(path = "/map", produces = MediaType.APPLICATION_JSON_VALUE)
  MapResponse map(
      @PathVariable String name,
      @RequestParam(required = false) @Nullable Long offsetBytes,
      @RequestParam(required = false) @Nullable Long lengthBytes) {
    try (VirtualDisk disk = images.attach(name, Access.READ_ONLY)) {
      return MapResponse.page(disk, offsetBytes, lengthBytes, images.limits().mapPageExtents());
    }
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

  /** A conditional change holds the image to itself from the version check to the answer. */
  private static void holdIf(VirtualDisk disk, @Nullable ExpectedVersion expected) {
    if (expected != null) {
      disk.holdExclusively(expected);
    }
  }

  private static ResponseEntity<Void> noContentWithEtag(VirtualDisk disk) {
    return ResponseEntity.noContent().eTag(EntityTags.quote(disk.version())).build();
  }

  /**
   * Streams the request body into the span, or stages and checks it first when it carries a {@code
   * Content-Digest}; the answer carries the image's new entity tag.
   */
  private ResponseEntity<Void> writeBody(
      VirtualDisk disk,
      ByteRanges.Span span,
      HttpServletRequest request,
      boolean flush,
      @Nullable String ifMatch)
      throws IOException {
    ExpectedVersion expected = EntityTags.parseIfMatch(ifMatch);
    ExpectedDigests digests = ExpectedDigests.of(request);
    Long maxWriteBytes = images.limits().maxWriteBytes();
    if (maxWriteBytes != null && span.lengthBytes() > maxWriteBytes) {
      throw new PayloadTooLargeException(span.lengthBytes(), maxWriteBytes);
    }
    if (digests == null) {
      streams.write(disk, span, new ServletBody(request.getInputStream()), expected, flush);
    } else {
      streams.write(
          disk,
          span,
          new ServletBody(request.getInputStream()),
          expected,
          flush,
          digests,
          images.staging());
    }
    return noContentWithEtag(disk);
  }
}
