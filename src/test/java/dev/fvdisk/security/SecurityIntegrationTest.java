package dev.fvdisk.security;

import static io.restassured.RestAssured.given;
import static org.assertj.core.api.Assertions.assertThat;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.hasKey;
import static org.hamcrest.Matchers.not;
import static org.hamcrest.Matchers.startsWith;

import com.atlassian.oai.validator.OpenApiInteractionValidator;
import com.atlassian.oai.validator.restassured.OpenApiValidationFilter;
import dev.fvdisk.testing.QemuImg;
import dev.fvdisk.testing.RawHttp;
import io.restassured.specification.RequestSpecification;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

/**
 * The real server with tokens of every role, some limited to image patterns, driven over HTTP.
 * Requests to the API are validated against the committed contract, so 401, 403 and the hiding 404
 * must be declared there too.
 */
@SpringBootTest(
    webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
    properties = {
      "server.address=127.0.0.1",
      "fvdisk.security.tokens[0].name=ops",
      "fvdisk.security.tokens[0].secret=" + SecurityIntegrationTest.ADMIN,
      "fvdisk.security.tokens[0].role=admin",
      "fvdisk.security.tokens[1].name=vm-host",
      "fvdisk.security.tokens[1].secret=" + SecurityIntegrationTest.VM_WRITER,
      "fvdisk.security.tokens[1].role=writer",
      "fvdisk.security.tokens[1].images=vm-*",
      "fvdisk.security.tokens[2].name=auditor",
      "fvdisk.security.tokens[2].secret-sha256=" + SecurityIntegrationTest.READER_SHA256,
      "fvdisk.security.tokens[2].role=reader",
      "fvdisk.security.tokens[3].name=db-reader",
      "fvdisk.security.tokens[3].secret=" + SecurityIntegrationTest.DB_READER,
      "fvdisk.security.tokens[3].role=reader",
      "fvdisk.security.tokens[3].images=db-*",
      "fvdisk.security.tokens[4].name=prometheus",
      "fvdisk.security.tokens[4].secret=" + SecurityIntegrationTest.MONITOR,
      "fvdisk.security.tokens[4].role=monitor",
      "fvdisk.security.tokens[5].name=vm-admin",
      "fvdisk.security.tokens[5].secret=" + SecurityIntegrationTest.VM_ADMIN,
      "fvdisk.security.tokens[5].role=admin",
      "fvdisk.security.tokens[5].images=vm-*,golden-*"
    })
class SecurityIntegrationTest {

  static final String ADMIN = "admin-7c1e0b5d9a2f4e6b";
  static final String VM_WRITER = "vm-writer-3f9a1c7e2b5d";
  static final String READER = "reader-8d2b6f4a1e9c";
  // printf %s reader-8d2b6f4a1e9c | sha256sum
  static final String READER_SHA256 =
      "c0f2e62d6d87df3bdb15e2d36ab6700908ca8342b65d807d7edf4a3d2cb20c1f";
  static final String DB_READER = "db-reader-0a4c8e2f6b1d";
  static final String MONITOR = "monitor-5e1a9c3f7b2d";
  static final String VM_ADMIN = "vm-admin-2d6f0b4e8a1c";

  private static final String IMAGES = "/api/v1/images";
  private static final String UNAUTHORIZED = "https://fvdisk.dev/problems/unauthorized";
  private static final String FORBIDDEN = "https://fvdisk.dev/problems/forbidden";
  private static final String NOT_FOUND = "https://fvdisk.dev/problems/image-not-found";
  private static final OpenApiValidationFilter VALIDATION =
      new OpenApiValidationFilter(
          OpenApiInteractionValidator.createForSpecificationUrl(
                  Path.of("openapi", "openapi.yaml").toUri().toString())
              .build());
  private static final AtomicInteger NAMES = new AtomicInteger();

  @LocalServerPort int port;

  @DynamicPropertySource
  static void dataDir(DynamicPropertyRegistry registry) throws IOException {
    Path base = Files.createDirectories(Path.of("target", "it-data"));
    Path dir = Files.createTempDirectory(base, "security-");
    registry.add("fvdisk.data-dir", dir::toString);
  }

  private RequestSpecification api() {
    return given().port(port).filter(VALIDATION);
  }

  private RequestSpecification raw() {
    return given().port(port);
  }

  private RequestSpecification bearer(String token) {
    return api().header("Authorization", "Bearer " + token);
  }

  private RequestSpecification basic(String token) {
    return api().auth().preemptive().basic("any-user-name", token);
  }

  private static String name(String prefix) {
    return prefix + "-" + NAMES.incrementAndGet() + "-" + System.nanoTime() % 100000;
  }

  private String create(String name) {
    bearer(ADMIN)
        .contentType("application/json")
        .body(Map.of("name", name, "sizeBytes", 1 << 20))
        .post(IMAGES)
        .then()
        .statusCode(201);
    return name;
  }

  private void write(RequestSpecification as, String name, byte[] data, int expectedStatus) {
    as.contentType("application/octet-stream")
        .header("Content-Range", "bytes 0-" + (data.length - 1) + "/*")
        .body(data)
        .put(IMAGES + "/" + name + "/data")
        .then()
        .statusCode(expectedStatus);
  }

  private byte[] readAll(String name) {
    return bearer(ADMIN)
        .get(IMAGES + "/" + name + "/data")
        .then()
        .statusCode(200)
        .extract()
        .asByteArray();
  }

  @Test
  void the_sha256_in_the_test_configuration_is_that_of_the_reader_secret() {
    assertThat(HexFormat.of().formatHex(TokenRegistry.sha256(READER))).isEqualTo(READER_SHA256);
  }

  /**
   * A 1 GiB body labelled as a form, without credentials: answered 401 after its headers, while the
   * client has sent only a sliver of it. (Spring's form filter used to read any PUT or PATCH form
   * body into a String before authentication; one such request exhausted the heap.)
   */
  @Test
  void an_unauthenticated_form_body_of_a_gibibyte_is_refused_without_being_read() throws Exception {
    String image = create(name("vm-form"));
    long announced = 1L << 30;
    byte[] piece = new byte[64 << 10];
    java.util.Arrays.fill(piece, (byte) 'a');
    long sent = 0;
    RawHttp.Response answer;
    try (java.net.Socket socket = RawHttp.connect(port)) {
      java.io.OutputStream out = socket.getOutputStream();
      out.write(
          ("PUT "
                  + IMAGES
                  + "/"
                  + image
                  + "/data HTTP/1.1\r\nHost: localhost\r\n"
                  + "Content-Type: application/x-www-form-urlencoded\r\n"
                  + "Content-Length: "
                  + announced
                  + "\r\n\r\n")
              .getBytes(StandardCharsets.ISO_8859_1));
      // Send until the answer is there or the server stops taking the body; 64 MiB is far more
      // than the server buffers, and far less than it would need to read to build the String.
      try {
        while (socket.getInputStream().available() == 0 && sent < 64L << 20) {
          out.write(piece);
          sent += piece.length;
        }
      } catch (IOException closedByServer) {
        // Tomcat closes the connection once it has discarded as much of the body as it will.
      }
      answer = RawHttp.read(socket.getInputStream(), false);
    }
    assertThat(answer.status()).as(answer.toString()).isEqualTo(401);
    assertThat(answer.header("Content-Type")).startsWith("application/problem+json");
    assertThat(sent).as("bytes sent before the answer").isLessThan(64L << 20);
    assertThat(readAll(image)).isEqualTo(new byte[1 << 20]);
  }

  @Test
  void no_token_gets_401_with_both_challenges_as_a_problem() {
    api()
        .get(IMAGES)
        .then()
        .statusCode(401)
        .header("WWW-Authenticate", "Basic realm=\"fvdisk\", Bearer")
        .contentType("application/problem+json")
        .body("type", equalTo(UNAUTHORIZED))
        .body("title", equalTo("Unauthorized"))
        .body("status", equalTo(401))
        .body("instance", equalTo(IMAGES));
  }

  @Test
  void wrong_token_gets_401_in_both_forms_and_changes_nothing() {
    String image = create(name("vm"));
    byte[] before = readAll(image);
    bearer("not-a-token").get(IMAGES + "/" + image).then().statusCode(401);
    basic("not-a-token").get(IMAGES + "/" + image).then().statusCode(401);
    // Ranged reads are answered ahead of Spring MVC, but after the security filters.
    api().header("Range", "bytes=0-511").get(IMAGES + "/" + image + "/data").then().statusCode(401);
    bearer("not-a-token")
        .header("Range", "bytes=0-511")
        .get(IMAGES + "/" + image + "/data")
        .then()
        .statusCode(401);
    write(bearer("not-a-token"), image, new byte[512], 401);
    api().header("Authorization", "Bearer ").get(IMAGES).then().statusCode(401);
    raw()
        .header("Authorization", "Digest username=\"x\"")
        .get(IMAGES)
        .then()
        .statusCode(401)
        .header("WWW-Authenticate", startsWith("Basic"))
        .body("type", equalTo(UNAUTHORIZED));
    raw()
        .header("Authorization", "Basic !!!not-base64")
        .get(IMAGES)
        .then()
        .statusCode(401)
        .body("type", equalTo(UNAUTHORIZED));
    assertThat(readAll(image)).isEqualTo(before);
  }

  @Test
  void bearer_and_basic_carry_the_same_token_and_basic_ignores_the_user_name() {
    String image = create(name("vm"));
    bearer(VM_WRITER).get(IMAGES + "/" + image).then().statusCode(200);
    basic(VM_WRITER).get(IMAGES + "/" + image).then().statusCode(200);
    api()
        .auth()
        .preemptive()
        .basic("", VM_WRITER)
        .head(IMAGES + "/" + image + "/data")
        .then()
        .statusCode(200);
    raw()
        .header("Authorization", "bearer " + VM_WRITER)
        .get(IMAGES + "/" + image)
        .then()
        .statusCode(200);
  }

  @Test
  void a_token_configured_by_its_sha256_authenticates_with_its_secret() {
    String image = create(name("db"));
    basic(READER).get(IMAGES + "/" + image).then().statusCode(200);
    bearer(READER).get(IMAGES + "/" + image + "/map").then().statusCode(200);
    // The digest itself is not a token.
    bearer(READER_SHA256).get(IMAGES + "/" + image).then().statusCode(401);
  }

  @Test
  void reader_reads_but_gets_403_for_writes_and_lifecycle() {
    String image = create(name("db"));
    byte[] before = readAll(image);
    bearer(READER).get(IMAGES + "/" + image + "/data").then().statusCode(200);
    bearer(READER).options(IMAGES + "/" + image + "/data").then().statusCode(200);
    write(bearer(READER), image, new byte[512], 403);
    bearer(READER)
        .contentType("application/json")
        .body(Map.of("op", "flush"))
        .patch(IMAGES + "/" + image + "/data")
        .then()
        .statusCode(403)
        .contentType("application/problem+json")
        .body("type", equalTo(FORBIDDEN))
        .body("title", equalTo("Forbidden"))
        .body(
            "detail",
            equalTo(
                "token \"auditor\" (role reader) may not PATCH " + IMAGES + "/" + image + "/data"));
    bearer(READER).delete(IMAGES + "/" + image).then().statusCode(403);
    bearer(READER).post(IMAGES + "/" + image + "/check").then().statusCode(403);
    bearer(READER)
        .contentType("application/json")
        .body(Map.of("name", name("db"), "sizeBytes", 1 << 20))
        .post(IMAGES)
        .then()
        .statusCode(403);
    assertThat(readAll(image)).isEqualTo(before);
  }

  @Test
  void writer_writes_data_but_gets_403_for_lifecycle() {
    String image = create(name("vm"));
    byte[] data = new byte[4096];
    java.util.Arrays.fill(data, (byte) 7);
    write(bearer(VM_WRITER), image, data, 204);
    bearer(VM_WRITER)
        .contentType("application/octet-stream")
        .body(new byte[512])
        .put(IMAGES + "/" + image + "/sectors/8")
        .then()
        .statusCode(204);
    bearer(VM_WRITER)
        .contentType("application/json")
        .body(Map.of("op", "zero", "offsetBytes", 0, "lengthBytes", 512))
        .patch(IMAGES + "/" + image + "/data")
        .then()
        .statusCode(204);
    bearer(VM_WRITER)
        .contentType("application/merge-patch+json")
        .body(Map.of("readOnly", true))
        .patch(IMAGES + "/" + image)
        .then()
        .statusCode(403)
        .body("type", equalTo(FORBIDDEN));
    bearer(VM_WRITER).delete(IMAGES + "/" + image).then().statusCode(403);
    bearer(VM_WRITER).get(IMAGES + "/" + image).then().statusCode(200);
  }

  @Test
  void writer_takes_snapshots_reader_reads_them_and_only_admin_deletes_them() {
    String image = create(name("vm"));
    String snapshots = IMAGES + "/" + image + "/snapshots";
    bearer(READER)
        .contentType("application/json")
        .body(Map.of("name", "by-reader"))
        .post(snapshots)
        .then()
        .statusCode(403)
        .contentType("application/problem+json")
        .body("type", equalTo(FORBIDDEN))
        .body("detail", equalTo("token \"auditor\" (role reader) may not POST " + snapshots));
    bearer(VM_WRITER)
        .contentType("application/json")
        .body(Map.of("name", "by-writer"))
        .post(snapshots)
        .then()
        .statusCode(201);
    bearer(READER)
        .get(snapshots)
        .then()
        .statusCode(200)
        .body("snapshots.name[0]", equalTo("by-writer"));
    bearer(READER).get(snapshots + "/by-writer").then().statusCode(200);
    bearer(READER).head(snapshots + "/by-writer/data").then().statusCode(200);
    bearer(READER)
        .header("Range", "bytes=0-511")
        .get(snapshots + "/by-writer/data")
        .then()
        .statusCode(206);
    bearer(VM_WRITER)
        .delete(snapshots + "/by-writer")
        .then()
        .statusCode(403)
        .contentType("application/problem+json")
        .body("type", equalTo(FORBIDDEN));
    bearer(READER).delete(snapshots + "/by-writer").then().statusCode(403);
    bearer(READER).get(snapshots).then().body("snapshots.name", equalTo(List.of("by-writer")));
    bearer(ADMIN).delete(snapshots + "/by-writer").then().statusCode(204);
    // Snapshots share the image's scope: outside it they are answered as a missing image.
    bearer(DB_READER).get(snapshots).then().statusCode(404).body("type", equalTo(NOT_FOUND));
  }

  @Test
  void an_image_outside_the_token_pattern_looks_exactly_like_a_missing_one() {
    String other = create(name("db"));
    byte[] before = readAll(other);
    String missing = name("db");
    for (String image : List.of(other, missing)) {
      bearer(VM_WRITER)
          .get(IMAGES + "/" + image)
          .then()
          .statusCode(404)
          .contentType("application/problem+json")
          .body("type", equalTo(NOT_FOUND))
          .body("detail", equalTo("no image named \"" + image + "\""))
          .body("image", equalTo(image));
      bearer(VM_WRITER).head(IMAGES + "/" + image + "/data").then().statusCode(404);
      bearer(VM_WRITER)
          .header("Range", "bytes=0-511")
          .get(IMAGES + "/" + image + "/data")
          .then()
          .statusCode(404)
          .contentType("application/problem+json");
      write(bearer(VM_WRITER), image, new byte[512], 404);
    }
    // The role is refused before the scope, and the same way whether or not the image exists.
    bearer(VM_WRITER).delete(IMAGES + "/" + other).then().statusCode(403);
    bearer(VM_WRITER).delete(IMAGES + "/" + missing).then().statusCode(403);
    assertThat(readAll(other)).isEqualTo(before);
  }

  @Test
  void the_list_shows_only_images_in_the_token_pattern() {
    String vm = create(name("vm"));
    String db = create(name("db"));
    List<String> dbView =
        bearer(DB_READER).get(IMAGES).then().statusCode(200).extract().path("images.name");
    assertThat(dbView).contains(db).doesNotContain(vm).allMatch(n -> n.startsWith("db-"));
    List<String> all =
        bearer(READER).get(IMAGES).then().statusCode(200).extract().path("images.name");
    assertThat(all).contains(db, vm);
  }

  @Test
  void a_scoped_admin_creates_only_in_its_pattern_and_clones_only_visible_bases() {
    String hiddenBase = create(name("db"));
    bearer(ADMIN)
        .contentType("application/merge-patch+json")
        .body(Map.of("readOnly", true))
        .patch(IMAGES + "/" + hiddenBase)
        .then()
        .statusCode(200);
    bearer(VM_ADMIN)
        .contentType("application/json")
        .body(Map.of("name", name("db"), "sizeBytes", 1 << 20))
        .post(IMAGES)
        .then()
        .statusCode(403)
        .body("type", equalTo(FORBIDDEN));
    bearer(VM_ADMIN)
        .contentType("application/json")
        .body(Map.of("name", name("vm"), "base", hiddenBase))
        .post(IMAGES)
        .then()
        .statusCode(404)
        .body("type", equalTo(NOT_FOUND))
        .body("image", equalTo(hiddenBase));
    String golden = name("golden");
    bearer(VM_ADMIN)
        .contentType("application/json")
        .body(Map.of("name", golden, "sizeBytes", 1 << 20))
        .post(IMAGES)
        .then()
        .statusCode(201);
    bearer(VM_ADMIN)
        .contentType("application/merge-patch+json")
        .body(Map.of("readOnly", true))
        .patch(IMAGES + "/" + golden)
        .then()
        .statusCode(200);
    String clone = name("vm");
    bearer(VM_ADMIN)
        .contentType("application/json")
        .body(Map.of("name", clone, "base", golden))
        .post(IMAGES)
        .then()
        .statusCode(201);
    bearer(VM_ADMIN).delete(IMAGES + "/" + clone).then().statusCode(204);
    bearer(VM_ADMIN).delete(IMAGES + "/" + hiddenBase).then().statusCode(404);
  }

  @Test
  void monitor_has_no_image_access() {
    bearer(MONITOR).get(IMAGES).then().statusCode(403);
  }

  @Test
  void bare_health_is_public_and_shows_no_details_without_monitor_or_admin() {
    raw().get("/actuator/health").then().statusCode(200).body("$", not(hasKey("components")));
    raw()
        .header("Authorization", "Bearer " + READER)
        .get("/actuator/health")
        .then()
        .statusCode(200)
        .body("$", not(hasKey("components")));
    raw()
        .header("Authorization", "Bearer " + MONITOR)
        .get("/actuator/health")
        .then()
        .statusCode(200)
        .body("$", hasKey("components"));
    raw()
        .header("Authorization", "Bearer " + ADMIN)
        .get("/actuator/health")
        .then()
        .statusCode(200)
        .body("$", hasKey("components"));
  }

  @Test
  void other_actuator_endpoints_need_monitor_or_admin() {
    for (String path : List.of("/actuator", "/actuator/info", "/actuator/health/ping")) {
      raw().get(path).then().statusCode(401).body("type", equalTo(UNAUTHORIZED));
      raw()
          .header("Authorization", "Bearer " + READER)
          .get(path)
          .then()
          .statusCode(403)
          .body("type", equalTo(FORBIDDEN));
      raw().header("Authorization", "Bearer " + VM_WRITER).get(path).then().statusCode(403);
      raw().header("Authorization", "Bearer " + MONITOR).get(path).then().statusCode(200);
      raw().header("Authorization", "Bearer " + ADMIN).get(path).then().statusCode(200);
    }
  }

  @Test
  void endpoints_that_dump_memory_environment_or_configuration_are_refused_even_to_admin() {
    for (String path :
        List.of(
            "/actuator/heapdump", "/actuator/env", "/actuator/configprops", "/actuator/beans")) {
      raw().header("Authorization", "Bearer " + ADMIN).get(path).then().statusCode(403);
    }
  }

  /**
   * QEMU's HTTP driver can send only Basic credentials: {@code username} and a {@code
   * password-secret} object, given with {@code --image-opts}. Without them it gets 401 and fails.
   */
  @Test
  void qemu_img_reads_an_image_with_basic_credentials(@TempDir Path work) throws Exception {
    QemuImg.assumeAvailable();
    String image = create(name("vm"));
    byte[] data = new byte[1 << 20];
    for (int i = 0; i < data.length; i++) {
      data[i] = (byte) (i * 7 + 3);
    }
    write(bearer(ADMIN), image, data, 204);
    String url = "http://127.0.0.1:" + port + IMAGES + "/" + image + "/data";
    String secret = "secret,id=sec0,data=" + VM_WRITER;
    String opts = "driver=http,url=" + url + ",username=qemu,password-secret=sec0";

    String info =
        QemuImg.run(
            work, "qemu-img", "info", "--output=json", "--object", secret, "--image-opts", opts);
    assertThat(info).contains("\"virtual-size\": " + (1 << 20));

    Path out = work.resolve("out.raw");
    QemuImg.run(
        work,
        "qemu-img",
        "convert",
        "-m",
        "1",
        "--object",
        secret,
        "--image-opts",
        opts,
        "-O",
        "raw",
        out.toString());
    assertThat(Files.readAllBytes(out)).isEqualTo(data);

    // The same open without credentials, or with a token for other images, is refused.
    Process refused =
        new ProcessBuilder("qemu-img", "info", "--image-opts", "driver=http,url=" + url)
            .redirectErrorStream(true)
            .start();
    String text = new String(refused.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(refused.waitFor(120, TimeUnit.SECONDS)).isTrue();
    assertThat(refused.exitValue()).as(text).isNotZero();
  }

  @Test
  void the_contract_is_public() {
    raw().get("/openapi/openapi.yaml").then().statusCode(200);
  }
}
