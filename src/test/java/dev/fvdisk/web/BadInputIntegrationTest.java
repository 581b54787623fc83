package dev.fvdisk.web;

import static org.assertj.core.api.Assertions.assertThat;

import io.restassured.response.Response;
import io.restassured.specification.RequestSpecification;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * A catalogue of malformed requests, each answered with the right 4xx problem, and no image changed
 * by any of them (checksums before and after). Sent without spec validation, since most of them
 * break the spec on purpose; the answers are checked by hand instead.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class BadInputIntegrationTest extends ApiTestSupport {

  private static final String LONG_NAME = "a".repeat(64);

  private final String target = uniqueName("target");
  private final String other = uniqueName("other");
  private final List<String> before = new ArrayList<>();

  /** One malformed request and the answer it must get; {@code slug} null for container 400s. */
  record Case(
      String label,
      String method,
      String path,
      Map<String, String> headers,
      @Nullable String contentType,
      @Nullable Object body,
      int status,
      @Nullable String slug) {
    @Override
    public String toString() {
      return label;
    }
  }

  @BeforeAll
  void createImagesWithContent() {
    for (String name : List.of(target, other)) {
      api()
          .contentType("application/json")
          .body(Map.of("name", name, "sizeBytes", MIB, "chunkSizeBytes", 65536))
          .post(IMAGES)
          .then()
          .statusCode(201);
      write(name, 1000, pattern(200000, name.length()));
      before.add(checksum(name));
    }
  }

  @AfterAll
  void imagesAreUnchanged() {
    assertThat(List.of(checksum(target), checksum(other))).isEqualTo(before);
  }

  Stream<Case> cases() {
    String img = IMAGES + "/" + target;
    String data = img + "/data";
    String json = "application/json";
    String bin = "application/octet-stream";
    Map<String, String> none = Map.of();
    byte[] ten = new byte[10];
    return Stream.of(
        // names
        new Case("encoded slash in name", "GET", IMAGES + "/..%2Fx", none, null, null, 400, null),
        new Case("encoded slash a%2Fb", "GET", IMAGES + "/a%2Fb", none, null, null, 400, null),
        // Spring Security's firewall refuses a path that decodes to "..", before any controller.
        new Case(
            "encoded dot-dot", "GET", IMAGES + "/%2e%2e", none, null, null, 400, "bad-request"),
        new Case(
            "upper-case name", "GET", IMAGES + "/VM-1", none, null, null, 404, "image-not-found"),
        new Case(
            "64-char name",
            "GET",
            IMAGES + "/" + LONG_NAME,
            none,
            null,
            null,
            404,
            "image-not-found"),
        new Case(
            "name starting with dot",
            "DELETE",
            IMAGES + "/.hidden",
            none,
            null,
            null,
            404,
            "image-not-found"),
        new Case(
            "create empty name",
            "POST",
            IMAGES,
            none,
            json,
            "{\"name\":\"\",\"sizeBytes\":512}",
            400,
            "bad-request"),
        new Case(
            "create 64-char name",
            "POST",
            IMAGES,
            none,
            json,
            "{\"name\":\"" + LONG_NAME + "\",\"sizeBytes\":512}",
            400,
            "bad-request"),
        new Case(
            "create ../x",
            "POST",
            IMAGES,
            none,
            json,
            "{\"name\":\"../x\",\"sizeBytes\":512}",
            400,
            "bad-request"),
        new Case(
            "create a/b",
            "POST",
            IMAGES,
            none,
            json,
            "{\"name\":\"a/b\",\"sizeBytes\":512}",
            400,
            "bad-request"),
        new Case(
            "create .",
            "POST",
            IMAGES,
            none,
            json,
            "{\"name\":\".\",\"sizeBytes\":512}",
            400,
            "bad-request"),
        new Case(
            "create ..",
            "POST",
            IMAGES,
            none,
            json,
            "{\"name\":\"..\",\"sizeBytes\":512}",
            400,
            "bad-request"),
        new Case(
            "create -lead",
            "POST",
            IMAGES,
            none,
            json,
            "{\"name\":\"-x\",\"sizeBytes\":512}",
            400,
            "bad-request"),
        new Case(
            "create existing name",
            "POST",
            IMAGES,
            none,
            json,
            "{\"name\":\"" + target + "\",\"sizeBytes\":512}",
            409,
            "image-exists"),
        // sizes
        new Case(
            "negative size",
            "POST",
            IMAGES,
            none,
            json,
            "{\"name\":\"n1\",\"sizeBytes\":-512}",
            422,
            "invalid-value"),
        new Case(
            "zero size",
            "POST",
            IMAGES,
            none,
            json,
            "{\"name\":\"n1\",\"sizeBytes\":0}",
            422,
            "invalid-value"),
        new Case(
            "unaligned size",
            "POST",
            IMAGES,
            none,
            json,
            "{\"name\":\"n1\",\"sizeBytes\":1000}",
            422,
            "invalid-value"),
        new Case(
            "size over maximum",
            "POST",
            IMAGES,
            none,
            json,
            "{\"name\":\"n1\",\"sizeBytes\":1125899906842624}",
            422,
            "invalid-value"),
        new Case(
            "non-numeric size",
            "POST",
            IMAGES,
            none,
            json,
            "{\"name\":\"n1\",\"sizeBytes\":\"abc\"}",
            400,
            "bad-request"),
        new Case(
            "numeric string size",
            "POST",
            IMAGES,
            none,
            json,
            "{\"name\":\"n1\",\"sizeBytes\":\"1024\"}",
            400,
            "bad-request"),
        new Case(
            "fractional size",
            "POST",
            IMAGES,
            none,
            json,
            "{\"name\":\"n1\",\"sizeBytes\":1.5}",
            400,
            "bad-request"),
        new Case(
            "overflowing size",
            "POST",
            IMAGES,
            none,
            json,
            "{\"name\":\"n1\",\"sizeBytes\":99999999999999999999}",
            400,
            "bad-request"),
        new Case(
            "bad chunk size",
            "POST",
            IMAGES,
            none,
            json,
            "{\"name\":\"n1\",\"sizeBytes\":512,\"chunkSizeBytes\":3000}",
            422,
            "invalid-value"),
        // JSON shape
        new Case(
            "unknown field",
            "POST",
            IMAGES,
            none,
            json,
            "{\"name\":\"n1\",\"sizeBytes\":512,\"colour\":1}",
            400,
            "bad-request"),
        new Case(
            "name of wrong type",
            "POST",
            IMAGES,
            none,
            json,
            "{\"name\":123,\"sizeBytes\":512}",
            400,
            "bad-request"),
        new Case(
            "missing name", "POST", IMAGES, none, json, "{\"sizeBytes\":512}", 400, "bad-request"),
        new Case(
            "missing size", "POST", IMAGES, none, json, "{\"name\":\"n1\"}", 400, "bad-request"),
        new Case("malformed JSON", "POST", IMAGES, none, json, "{\"name\":", 400, "bad-request"),
        new Case("JSON array", "POST", IMAGES, none, json, "[1,2]", 400, "bad-request"),
        new Case(
            "trailing garbage",
            "POST",
            IMAGES,
            none,
            json,
            "{\"name\":\"n1\",\"sizeBytes\":512} x",
            400,
            "bad-request"),
        new Case(
            "text body",
            "POST",
            IMAGES,
            none,
            "text/plain",
            "hello",
            415,
            "unsupported-media-type"),
        new Case(
            "unknown base",
            "POST",
            IMAGES,
            none,
            json,
            "{\"name\":\"n1\",\"base\":\"nope\"}",
            404,
            "image-not-found"),
        new Case(
            "patch wrong type",
            "PATCH",
            img,
            none,
            json,
            "{\"sizeBytes\":\"big\"}",
            400,
            "bad-request"),
        new Case(
            "patch read-only field",
            "PATCH",
            img,
            none,
            json,
            "{\"name\":\"other\"}",
            400,
            "bad-request"),
        new Case(
            "patch shrink", "PATCH", img, none, json, "{\"sizeBytes\":512}", 422, "invalid-value"),
        new Case(
            "patch negative delay",
            "PATCH",
            img,
            none,
            json,
            "{\"prefetch\":{\"startDelaySeconds\":-1}}",
            422,
            "invalid-value"),
        new Case(
            "patch unknown image",
            "PATCH",
            IMAGES + "/nope",
            none,
            json,
            "{\"readOnly\":true}",
            404,
            "image-not-found"),
        // ranges
        new Case(
            "range not numeric",
            "GET",
            data,
            Map.of("Range", "bytes=abc"),
            null,
            null,
            400,
            "bad-request"),
        new Case(
            "range other unit",
            "GET",
            data,
            Map.of("Range", "items=0-1"),
            null,
            null,
            400,
            "bad-request"),
        new Case(
            "range empty spec",
            "GET",
            data,
            Map.of("Range", "bytes=-"),
            null,
            null,
            400,
            "bad-request"),
        new Case(
            "range inverted",
            "GET",
            data,
            Map.of("Range", "bytes=9-1"),
            null,
            null,
            416,
            "range-not-satisfiable"),
        new Case(
            "several ranges",
            "GET",
            data,
            Map.of("Range", "bytes=0-1,4-5"),
            null,
            null,
            416,
            "range-not-satisfiable"),
        new Case(
            "range past end",
            "GET",
            data,
            Map.of("Range", "bytes=1048576-"),
            null,
            null,
            416,
            "range-not-satisfiable"),
        new Case(
            "range overflowing",
            "GET",
            data,
            Map.of("Range", "bytes=99999999999999999999-"),
            null,
            null,
            416,
            "range-not-satisfiable"),
        // writes
        new Case(
            "content-range inverted",
            "PUT",
            data,
            Map.of("Content-Range", "bytes 10-1/*"),
            bin,
            ten,
            400,
            "bad-request"),
        new Case(
            "content-range malformed",
            "PUT",
            data,
            Map.of("Content-Range", "bytes x-y/*"),
            bin,
            ten,
            400,
            "bad-request"),
        new Case(
            "content-range negative",
            "PUT",
            data,
            Map.of("Content-Range", "bytes -5-4/*"),
            bin,
            ten,
            400,
            "bad-request"),
        new Case(
            "body shorter than range",
            "PUT",
            data,
            Map.of("Content-Range", "bytes 0-19/*"),
            bin,
            ten,
            400,
            "bad-request"),
        new Case(
            "body longer than range",
            "PUT",
            data,
            Map.of("Content-Range", "bytes 0-4/*"),
            bin,
            ten,
            400,
            "bad-request"),
        new Case(
            "write past end",
            "PUT",
            data,
            Map.of("Content-Range", "bytes 1048570-1048579/*"),
            bin,
            ten,
            416,
            "range-not-satisfiable"),
        new Case(
            "write other size",
            "PUT",
            data,
            Map.of("Content-Range", "bytes 0-9/2048"),
            bin,
            ten,
            416,
            "range-not-satisfiable"),
        new Case(
            "write text body",
            "PUT",
            data,
            none,
            "text/plain",
            "abc",
            415,
            "unsupported-media-type"),
        new Case(
            "write unknown image",
            "PUT",
            IMAGES + "/nope/data",
            none,
            bin,
            ten,
            404,
            "image-not-found"),
        new Case(
            "if-match malformed",
            "PUT",
            data,
            Map.of("If-Match", "abc"),
            bin,
            ten,
            400,
            "bad-request"),
        new Case(
            "if-match stale",
            "PUT",
            data,
            Map.of("If-Match", "\"stale\""),
            bin,
            ten,
            412,
            "precondition-failed"),
        new Case(
            "if-match weak",
            "PUT",
            data,
            Map.of("If-Match", "W/\"x\""),
            bin,
            ten,
            412,
            "precondition-failed"),
        new Case(
            "flush not boolean", "PUT", data + "?flush=maybe", none, bin, ten, 400, "bad-request"),
        // data operations
        new Case("unknown op", "PATCH", data, none, json, "{\"op\":\"trim\"}", 400, "bad-request"),
        new Case("missing op", "PATCH", data, none, json, "{}", 400, "bad-request"),
        new Case(
            "zero without range",
            "PATCH",
            data,
            none,
            json,
            "{\"op\":\"zero\"}",
            400,
            "bad-request"),
        new Case(
            "zero negative offset",
            "PATCH",
            data,
            none,
            json,
            "{\"op\":\"zero\",\"offsetBytes\":-1,\"lengthBytes\":10}",
            416,
            "range-not-satisfiable"),
        new Case(
            "zero string offset",
            "PATCH",
            data,
            none,
            json,
            "{\"op\":\"zero\",\"offsetBytes\":\"0\",\"lengthBytes\":10}",
            400,
            "bad-request"),
        new Case(
            "zero past end",
            "PATCH",
            data,
            none,
            json,
            "{\"op\":\"zero\",\"offsetBytes\":1048000,\"lengthBytes\":1000}",
            416,
            "range-not-satisfiable"),
        new Case(
            "flush with fields",
            "PATCH",
            data,
            none,
            json,
            "{\"op\":\"flush\",\"offsetBytes\":0}",
            400,
            "bad-request"),
        // sectors and map
        new Case(
            "sector not numeric",
            "GET",
            img + "/sectors/abc?count=1",
            none,
            null,
            null,
            400,
            "bad-request"),
        new Case(
            "sector count missing",
            "GET",
            img + "/sectors/0",
            none,
            null,
            null,
            400,
            "bad-request"),
        new Case(
            "sector count negative",
            "GET",
            img + "/sectors/0?count=-1",
            none,
            null,
            null,
            422,
            "invalid-value"),
        new Case(
            "sector negative",
            "GET",
            img + "/sectors/-1?count=1",
            none,
            null,
            null,
            416,
            "range-not-satisfiable"),
        new Case(
            "sector overflowing",
            "GET",
            img + "/sectors/99999999999999999999?count=1",
            none,
            null,
            null,
            400,
            "bad-request"),
        new Case(
            "sector past end",
            "GET",
            img + "/sectors/2048?count=1",
            none,
            null,
            null,
            416,
            "range-not-satisfiable"),
        new Case(
            "sector body unaligned",
            "PUT",
            img + "/sectors/0",
            none,
            bin,
            new byte[100],
            422,
            "unaligned-data"),
        new Case(
            "sector write past end",
            "PUT",
            img + "/sectors/2047",
            none,
            bin,
            new byte[1024],
            416,
            "range-not-satisfiable"),
        new Case(
            "map offset not numeric",
            "GET",
            img + "/map?offsetBytes=abc",
            none,
            null,
            null,
            400,
            "bad-request"),
        new Case(
            "map offset negative",
            "GET",
            img + "/map?offsetBytes=-1",
            none,
            null,
            null,
            416,
            "range-not-satisfiable"),
        new Case(
            "map length zero",
            "GET",
            img + "/map?lengthBytes=0",
            none,
            null,
            null,
            422,
            "invalid-value"),
        // others
        new Case(
            "check repair not boolean",
            "POST",
            img + "/check?repair=maybe",
            none,
            null,
            null,
            400,
            "bad-request"),
        new Case("unknown path", "GET", "/api/v1/nothing", none, null, null, 404, "not-found"),
        new Case("wrong method", "POST", data, none, bin, ten, 405, "method-not-allowed"),
        // issue-6 catalogue: traversal spelled other ways, absurd numbers, oversized input
        new Case(
            "double-encoded dot-dot", "GET", IMAGES + "/%252e%252e", none, null, null, 400, null),
        new Case("double-encoded slash", "GET", IMAGES + "/a%252Fb", none, null, null, 400, null),
        new Case(
            "unicode look-alike hyphen in name",
            "GET",
            IMAGES + "/vm%E2%80%911",
            none,
            null,
            null,
            404,
            "image-not-found"),
        new Case(
            "fullwidth dot-dot look-alike",
            "GET",
            IMAGES + "/%EF%BC%8E%EF%BC%8E",
            none,
            null,
            null,
            404,
            "image-not-found"),
        new Case(
            "create with a look-alike name",
            "POST",
            IMAGES,
            none,
            json,
            "{\"name\":\"vm\u2011x\",\"sizeBytes\":512}",
            400,
            "bad-request"),
        new Case(
            "range start 2^63-1",
            "GET",
            data,
            Map.of("Range", "bytes=9223372036854775807-"),
            null,
            null,
            416,
            "range-not-satisfiable"),
        new Case(
            "put range ending at 2^63-1",
            "PUT",
            data,
            Map.of("Content-Range", "bytes 9223372036854775798-9223372036854775807/*"),
            bin,
            ten,
            416,
            "range-not-satisfiable"),
        new Case(
            "put range past 2^63",
            "PUT",
            data,
            Map.of("Content-Range", "bytes 9223372036854775807-9223372036854775816/*"),
            bin,
            ten,
            416,
            "range-not-satisfiable"),
        new Case(
            "sector read whose end overflows",
            "GET",
            img + "/sectors/18014398509481983?count=2",
            none,
            null,
            null,
            416,
            "range-not-satisfiable"),
        new Case(
            "sector count 2^63-1",
            "GET",
            img + "/sectors/0?count=9223372036854775807",
            none,
            null,
            null,
            416,
            "range-not-satisfiable"),
        new Case(
            "grow to 2^63-1",
            "PATCH",
            img,
            none,
            json,
            "{\"sizeBytes\":9223372036854775807}",
            422,
            "invalid-value"),
        new Case(
            "create 2^63-1 bytes",
            "POST",
            IMAGES,
            none,
            json,
            "{\"name\":\"huge\",\"sizeBytes\":9223372036854775807}",
            422,
            "invalid-value"),
        new Case(
            "zero whose end overflows",
            "PATCH",
            data,
            none,
            json,
            "{\"op\":\"zero\",\"offsetBytes\":512,\"lengthBytes\":9223372036854775807}",
            416,
            "range-not-satisfiable"),
        new Case(
            "oversized JSON body",
            "POST",
            IMAGES,
            none,
            json,
            "{\"name\":\"big\",\"sizeBytes\":512,\"base\":\"" + "x".repeat(100_000) + "\"}",
            413,
            "payload-too-large"),
        new Case(
            "oversized request header",
            "GET",
            data,
            Map.of("X-Filler", "y".repeat(20_000)),
            null,
            null,
            400,
            null),
        new Case(
            "delete other image with stale tag",
            "DELETE",
            IMAGES + "/" + other,
            Map.of("If-Match", "\"stale\""),
            null,
            null,
            412,
            "precondition-failed"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void malformed_request_gets_the_right_problem(Case c) {
    RequestSpecification request = raw().headers(c.headers());
    if (c.contentType() != null) {
      request = request.contentType(c.contentType());
    }
    if (c.body() instanceof byte[] bytes) {
      request = request.body(bytes);
    } else if (c.body() != null) {
      request = request.body(c.body().toString());
    }
    Response response = request.request(c.method(), c.path());
    assertThat(response.statusCode())
        .as(c.label() + ": " + response.asString())
        .isEqualTo(c.status());
    if (c.slug() != null) {
      assertThat(response.contentType()).startsWith("application/problem+json");
      assertThat(response.jsonPath().getString("type"))
          .isEqualTo("https://fvdisk.dev/problems/" + c.slug());
      assertThat(response.jsonPath().getInt("status")).isEqualTo(c.status());
      assertThat(response.jsonPath().getString("title")).isNotBlank();
      assertThat(response.jsonPath().getString("detail")).isNotBlank();
      assertThat(response.asString()).doesNotContain("Exception").doesNotContain("\tat ");
    }
  }
}
