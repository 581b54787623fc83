package dev.fvdisk.web;

import dev.fvdisk.service.BaseNotReadOnlyException;
import dev.fvdisk.service.ImageAttachedException;
import dev.fvdisk.service.ImageCorruptException;
import dev.fvdisk.service.ImageElsewhereException;
import dev.fvdisk.service.ImageExistsException;
import dev.fvdisk.service.ImageInUseException;
import dev.fvdisk.service.ImageNotFoundException;
import dev.fvdisk.service.ImageReadOnlyException;
import dev.fvdisk.service.ImageUnavailableException;
import dev.fvdisk.service.InsufficientStorageException;
import dev.fvdisk.service.InvalidRequestException;
import dev.fvdisk.service.InvalidValueException;
import dev.fvdisk.service.RangeOutsideDiskException;
import dev.fvdisk.service.ServiceException;
import dev.fvdisk.service.SnapshotExistsException;
import dev.fvdisk.service.SnapshotInUseException;
import dev.fvdisk.service.SnapshotLimitException;
import dev.fvdisk.service.SnapshotNotFoundException;
import dev.fvdisk.service.StorageIoException;
import dev.fvdisk.service.UnalignedDataException;
import dev.fvdisk.service.VersionMismatchException;
import java.net.URI;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * Every kind of problem the API reports: a stable type URI, a fixed title and the status. The
 * lookup tables below map service exceptions, the web layer's own refusals and bare HTTP statuses
 * (Spring's own errors) onto them; the OpenAPI document lists the same types.
 */
enum ProblemType {
  IMAGE_ELSEWHERE("image-elsewhere", "Image served by another instance", 307),
  BAD_REQUEST("bad-request", "Bad request", 400),
  DIGEST_MISMATCH("digest-mismatch", "Content digest mismatch", 400),
  UNAUTHORIZED("unauthorized", "Unauthorized", 401),
  FORBIDDEN("forbidden", "Forbidden", 403),
  NOT_FOUND("not-found", "Not found", 404),
  IMAGE_NOT_FOUND("image-not-found", "Image not found", 404),
  SNAPSHOT_NOT_FOUND("snapshot-not-found", "Snapshot not found", 404),
  METHOD_NOT_ALLOWED("method-not-allowed", "Method not allowed", 405),
  NOT_ACCEPTABLE("not-acceptable", "Not acceptable", 406),
  IMAGE_EXISTS("image-exists", "Image already exists", 409),
  IMAGE_READ_ONLY("image-read-only", "Image is read-only", 409),
  IMAGE_IN_USE("image-in-use", "Image is a base of other images", 409),
  IMAGE_ATTACHED("image-attached", "Image has writers attached", 409),
  BASE_NOT_READ_ONLY("base-not-read-only", "Base image is not read-only", 409),
  SNAPSHOT_EXISTS("snapshot-exists", "Snapshot already exists", 409),
  SNAPSHOT_LIMIT("snapshot-limit", "Too many snapshots", 409),
  SNAPSHOT_IN_USE("snapshot-in-use", "Snapshot is a base of other images", 409),
  LENGTH_REQUIRED("length-required", "Length required", 411),
  PRECONDITION_FAILED("precondition-failed", "Precondition failed", 412),
  PAYLOAD_TOO_LARGE("payload-too-large", "Payload too large", 413),
  UNSUPPORTED_MEDIA_TYPE("unsupported-media-type", "Unsupported media type", 415),
  RANGE_NOT_SATISFIABLE("range-not-satisfiable", "Range not satisfiable", 416),
  HEADERS_TOO_LARGE("headers-too-large", "Request headers too large", 431),
  UNALIGNED_DATA("unaligned-data", "Data not a whole number of sectors", 422),
  INVALID_VALUE("invalid-value", "Invalid value", 422),
  INTERNAL_ERROR("internal-error", "Internal error", 500),
  NOT_IMPLEMENTED("not-implemented", "Not implemented", 501),
  IMAGE_CORRUPT("image-corrupt", "Image corrupt", 500),
  STORAGE_IO_ERROR("storage-io-error", "Storage I/O error", 500),
  SERVICE_UNAVAILABLE("service-unavailable", "Service unavailable", 503),
  IMAGE_UNAVAILABLE("image-unavailable", "Image unavailable", 503),
  INSUFFICIENT_STORAGE("insufficient-storage", "Insufficient storage", 507);

  static final String BASE_URI = "https://fvdisk.dev/problems/";

  private static final Map<Class<? extends ServiceException>, ProblemType> BY_EXCEPTION =
      Map.ofEntries(
          Map.entry(InvalidRequestException.class, BAD_REQUEST),
          Map.entry(ImageNotFoundException.class, IMAGE_NOT_FOUND),
          Map.entry(ImageElsewhereException.class, IMAGE_ELSEWHERE),
          Map.entry(ImageExistsException.class, IMAGE_EXISTS),
          Map.entry(ImageReadOnlyException.class, IMAGE_READ_ONLY),
          Map.entry(ImageInUseException.class, IMAGE_IN_USE),
          Map.entry(ImageAttachedException.class, IMAGE_ATTACHED),
          Map.entry(BaseNotReadOnlyException.class, BASE_NOT_READ_ONLY),
          Map.entry(SnapshotNotFoundException.class, SNAPSHOT_NOT_FOUND),
          Map.entry(SnapshotExistsException.class, SNAPSHOT_EXISTS),
          Map.entry(SnapshotLimitException.class, SNAPSHOT_LIMIT),
          Map.entry(SnapshotInUseException.class, SNAPSHOT_IN_USE),
          Map.entry(VersionMismatchException.class, PRECONDITION_FAILED),
          Map.entry(RangeOutsideDiskException.class, RANGE_NOT_SATISFIABLE),
          Map.entry(UnalignedDataException.class, UNALIGNED_DATA),
          Map.entry(InvalidValueException.class, INVALID_VALUE),
          Map.entry(ImageCorruptException.class, IMAGE_CORRUPT),
          Map.entry(StorageIoException.class, STORAGE_IO_ERROR),
          Map.entry(ImageUnavailableException.class, IMAGE_UNAVAILABLE),
          Map.entry(InsufficientStorageException.class, INSUFFICIENT_STORAGE));

  private static final Map<Class<? extends HttpProblemException>, ProblemType> BY_HTTP_EXCEPTION =
      Map.ofEntries(
          Map.entry(DigestMismatchException.class, DIGEST_MISMATCH),
          Map.entry(LengthRequiredException.class, LENGTH_REQUIRED),
          Map.entry(PreconditionFailedException.class, PRECONDITION_FAILED),
          Map.entry(PayloadTooLargeException.class, PAYLOAD_TOO_LARGE),
          Map.entry(RangeNotSatisfiableException.class, RANGE_NOT_SATISFIABLE));

  private static final Map<Integer, ProblemType> BY_STATUS =
      Map.ofEntries(
          Map.entry(400, BAD_REQUEST),
          Map.entry(401, UNAUTHORIZED),
          Map.entry(403, FORBIDDEN),
          Map.entry(404, NOT_FOUND),
          Map.entry(405, METHOD_NOT_ALLOWED),
          Map.entry(406, NOT_ACCEPTABLE),
          Map.entry(411, LENGTH_REQUIRED),
          Map.entry(413, PAYLOAD_TOO_LARGE),
          Map.entry(415, UNSUPPORTED_MEDIA_TYPE),
          Map.entry(416, RANGE_NOT_SATISFIABLE),
          Map.entry(431, HEADERS_TOO_LARGE),
          Map.entry(500, INTERNAL_ERROR),
          Map.entry(501, NOT_IMPLEMENTED),
          Map.entry(503, SERVICE_UNAVAILABLE));

  private final String slug;
  private final String title;
  private final int status;

  ProblemType(String slug, String title, int status) {
    this.slug = slug;
    this.title = title;
    this.status = status;
  }

  URI type() {
    return URI.create(BASE_URI + slug);
  }

  String title() {
    return title;
  }

  int status() {
    return status;
  }

  /** The service exceptions the table knows; a test checks it against the hierarchy. */
  static java.util.Set<Class<? extends ServiceException>> mappedExceptions() {
    return BY_EXCEPTION.keySet();
  }

  static ProblemType of(ServiceException e) {
    ProblemType type = BY_EXCEPTION.get(e.getClass());
    if (type == null) {
      throw new IllegalStateException("no problem type for " + e.getClass().getName());
    }
    return type;
  }

  static ProblemType of(HttpProblemException e) {
    ProblemType type = BY_HTTP_EXCEPTION.get(e.getClass());
    if (type == null) {
      throw new IllegalStateException("no problem type for " + e.getClass().getName());
    }
    return type;
  }

  /** The type for a status Spring reported on its own; null when none of ours fits. */
  static @Nullable ProblemType ofStatus(int status) {
    return BY_STATUS.get(status);
  }
}
