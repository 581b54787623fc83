package dev.fvdisk.security;

import static dev.fvdisk.testing.DataPortHttp.assertSameOnBothPorts;
import static dev.fvdisk.testing.DataPortHttp.problem;
import static io.restassured.RestAssured.given;
import static org.assertj.core.api.Assertions.assertThat;

import dev.fvdisk.testing.DataPortHttp;
import dev.fvdisk.testing.RawHttp;
import dev.fvdisk.web.DataPort;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Base64;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

/**
 * The data port with tokens configured as in {@link SecurityIntegrationTest}: it authenticates,
 * authorizes and hides images as the main port does, with the same answers.
 */
@SpringBootTest(
    webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
    properties = {
      "server.address=127.0.0.1",
      "fvdisk.http-data.enabled=true",
      "fvdisk.http-data.port=0",
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
      "fvdisk.security.tokens[4].role=monitor"
    })
class DataPortSecurityIntegrationTest {

  private static final String IMAGES = "/api/v1/images";
  private static final String PROBLEMS = "https://fvdisk.dev/problems/";
  private static final int SIZE = 1 << 20;
  private static final AtomicInteger NAMES = new AtomicInteger();

  @LocalServerPort int port;

  @Autowired DataPort dataPort;

  @DynamicPropertySource
  static void dataDir(DynamicPropertyRegistry registry) throws IOException {
    Path base = Files.createDirectories(Path.of("target", "it-data"));
    Path dir = Files.createTempDirectory(base, "data-port-security-");
    registry.add("fvdisk.data-dir", dir::toString);
  }

  private static String name(String prefix) {
    return prefix + "-" + NAMES.incrementAndGet() + "-" + System.nanoTime() % 100000;
  }

  private static byte[] content() {
    byte[] b = new byte[4096];
    for (int i = 0; i < b.length; i++) {
      b[i] = (byte) (i * 13 + 7);
    }
    return b;
  }

  /** An image made and written by the admin on the main port. */
  private String create(String prefix) {
    String image = name(prefix);
    given()
        .port(port)
        .header("Authorization", "Bearer " + SecurityIntegrationTest.ADMIN)
        .contentType("application/json")
        .body(Map.of("name", image, "sizeBytes", SIZE))
        .post(IMAGES)
        .then()
        .statusCode(201);
    given()
        .port(port)
        .header("Authorization", "Bearer " + SecurityIntegrationTest.ADMIN)
        .contentType("application/octet-stream")
        .header("Content-Range", "bytes 0-4095/*")
        .body(content())
        .put(IMAGES + "/" + image + "/data")
        .then()
        .statusCode(204);
    return image;
  }

  private static String data(String image) {
    return IMAGES + "/" + image + "/data";
  }

  private static Map<String, String> ranged(String authorization) {
    Map<String, String> headers = new LinkedHashMap<>();
    headers.put("Range", "bytes=0-99");
    if (authorization != null) {
      headers.put("Authorization", authorization);
    }
    return headers;
  }

  private static String bearer(String token) {
    return "Bearer " + token;
  }

  private static String basic(String user, String token) {
    return "Basic "
        + Base64.getEncoder().encodeToString((user + ":" + token).getBytes(StandardCharsets.UTF_8));
  }

  private DataPortHttp.Pair both(String method, String image, Map<String, String> headers)
      throws IOException {
    return assertSameOnBothPorts(port, dataPort.port(), method, data(image), headers, true);
  }

  @Test
  void no_authorization_is_401_with_the_challenge_on_both_ports() throws IOException {
    String image = create("db");
    for (String method : List.of("GET", "HEAD")) {
      RawHttp.Response data = both(method, image, ranged(null)).data();
      assertThat(data.status()).as(method).isEqualTo(401);
      assertThat(data.header("WWW-Authenticate"))
          .as(method)
          .isEqualTo("Basic realm=\"fvdisk\", Bearer");
      if (method.equals("GET")) {
        assertThat(problem(data))
            .containsEntry("type", PROBLEMS + "unauthorized")
            .containsEntry("instance", data(image));
      }
    }
  }

  @Test
  void an_unknown_or_unusable_token_is_401_on_both_ports() throws IOException {
    String image = create("db");
    for (String authorization :
        List.of(
            bearer("not-a-token"),
            basic("any", "not-a-token"),
            basic("any", SecurityIntegrationTest.DB_READER + "x"),
            "Bearer ",
            "Token " + SecurityIntegrationTest.DB_READER,
            "Basic !!!not-base64!!!",
            "Basic "
                + Base64.getEncoder()
                    .encodeToString("no-colon".getBytes(StandardCharsets.UTF_8)))) {
      RawHttp.Response data = both("GET", image, ranged(authorization)).data();
      assertThat(data.status()).as(authorization).isEqualTo(401);
      assertThat(data.header("WWW-Authenticate")).as(authorization).isNotNull();
      assertThat(problem(data)).as(authorization).containsEntry("type", PROBLEMS + "unauthorized");
    }
  }

  @Test
  void a_monitor_token_is_403_on_both_ports() throws IOException {
    String image = create("db");
    for (String method : List.of("GET", "HEAD")) {
      RawHttp.Response data =
          both(method, image, ranged(bearer(SecurityIntegrationTest.MONITOR))).data();
      assertThat(data.status()).as(method).isEqualTo(403);
      if (method.equals("GET")) {
        assertThat(problem(data)).containsEntry("type", PROBLEMS + "forbidden");
      }
    }
  }

  @Test
  void an_image_outside_the_pattern_is_404_on_both_ports_as_a_missing_one() throws IOException {
    String hidden = create("vm");
    String missing = name("vm");
    Map<String, Map<String, Object>> problems = new HashMap<>();
    for (String image : List.of(hidden, missing)) {
      for (String authorization :
          List.of(
              bearer(SecurityIntegrationTest.DB_READER),
              basic("any", SecurityIntegrationTest.DB_READER))) {
        RawHttp.Response data = both("GET", image, ranged(authorization)).data();
        assertThat(data.status()).as(image).isEqualTo(404);
        Map<String, Object> members = problem(data);
        assertThat(members)
            .as(image)
            .containsEntry("type", PROBLEMS + "image-not-found")
            .containsEntry("instance", data(image));
        // The same answer but for the name: nothing tells a hidden image from a missing one.
        problems.put(image, withoutName(members, image));
      }
      assertThat(
              both("HEAD", image, ranged(bearer(SecurityIntegrationTest.DB_READER)))
                  .data()
                  .status())
          .isEqualTo(404);
    }
    assertThat(problems.get(hidden)).isEqualTo(problems.get(missing));
  }

  private static Map<String, Object> withoutName(Map<String, Object> members, String image) {
    Map<String, Object> general = new LinkedHashMap<>();
    members.forEach(
        (key, value) ->
            general.put(key, value instanceof String text ? text.replace(image, "{name}") : value));
    return general;
  }

  @Test
  void a_reader_in_its_pattern_reads_with_bearer_and_basic_on_both_ports() throws IOException {
    String image = create("db");
    byte[] expected = Arrays.copyOfRange(content(), 0, 100);
    for (String authorization :
        List.of(
            bearer(SecurityIntegrationTest.DB_READER),
            basic("any", SecurityIntegrationTest.DB_READER),
            basic("", SecurityIntegrationTest.DB_READER),
            bearer(SecurityIntegrationTest.READER),
            bearer(SecurityIntegrationTest.ADMIN))) {
      RawHttp.Response data = both("GET", image, ranged(authorization)).data();
      assertThat(data.status()).as(authorization).isEqualTo(206);
      assertThat(data.header("Content-Range")).isEqualTo("bytes 0-99/" + SIZE);
      assertThat(data.body()).as(authorization).isEqualTo(expected);
      assertThat(both("HEAD", image, Map.of("Authorization", authorization)).data().status())
          .isEqualTo(200);
    }
  }

  /** The headers of a write of {@code body} at offset 0, with {@code authorization} if any. */
  private static Map<String, String> writing(byte[] body, String authorization) {
    Map<String, String> headers = new LinkedHashMap<>();
    headers.put("Content-Type", "application/octet-stream");
    headers.put("Content-Range", "bytes 0-" + (body.length - 1) + "/*");
    headers.put("Content-Length", String.valueOf(body.length));
    if (authorization != null) {
      headers.put("Authorization", authorization);
    }
    return headers;
  }

  /** The image's first 4 KiB, read by the admin through the main port. */
  private byte[] first4KiB(String image) throws IOException {
    RawHttp.Response answer =
        RawHttp.exchange(
            port,
            "GET",
            data(image),
            Map.of("Range", "bytes=0-4095", "Authorization", bearer(SecurityIntegrationTest.ADMIN)),
            new byte[0]);
    assertThat(answer.status()).isEqualTo(206);
    return answer.body();
  }

  private static byte[] other() {
    byte[] b = new byte[100];
    Arrays.fill(b, (byte) 0x5a);
    return b;
  }

  @Test
  void a_reader_or_monitor_token_may_not_write_on_either_port_and_nothing_is_written()
      throws IOException {
    String image = create("db");
    for (String token :
        List.of(
            SecurityIntegrationTest.DB_READER,
            SecurityIntegrationTest.READER,
            SecurityIntegrationTest.MONITOR)) {
      RawHttp.Response data =
          assertSameOnBothPorts(
                  port,
                  dataPort.port(),
                  "PUT",
                  data(image),
                  writing(other(), bearer(token)),
                  other(),
                  true)
              .data();
      assertThat(data.status()).as(token).isEqualTo(403);
      assertThat(problem(data)).as(token).containsEntry("type", PROBLEMS + "forbidden");
    }
    assertThat(first4KiB(image)).isEqualTo(content());
  }

  @Test
  void a_write_without_a_token_is_401_on_both_ports_and_nothing_is_written() throws IOException {
    String image = create("vm");
    RawHttp.Response data =
        assertSameOnBothPorts(
                port, dataPort.port(), "PUT", data(image), writing(other(), null), other(), true)
            .data();
    assertThat(data.status()).isEqualTo(401);
    assertThat(data.header("WWW-Authenticate")).isEqualTo("Basic realm=\"fvdisk\", Bearer");
    assertThat(first4KiB(image)).isEqualTo(content());
  }

  @Test
  void a_writer_token_writes_in_its_pattern_on_the_data_port_and_finds_nothing_outside()
      throws IOException {
    String vm = create("vm");
    String db = create("db");
    RawHttp.Response hidden =
        assertSameOnBothPorts(
                port,
                dataPort.port(),
                "PUT",
                data(db),
                writing(other(), bearer(SecurityIntegrationTest.VM_WRITER)),
                other(),
                true)
            .data();
    assertThat(hidden.status()).isEqualTo(404);
    assertThat(problem(hidden)).containsEntry("type", PROBLEMS + "image-not-found");
    assertThat(first4KiB(db)).isEqualTo(content());

    RawHttp.Response written =
        RawHttp.exchange(
            dataPort.port(),
            "PUT",
            data(vm),
            writing(other(), bearer(SecurityIntegrationTest.VM_WRITER)),
            other());
    assertThat(written.status()).as(written.toString()).isEqualTo(204);
    byte[] expected = content();
    System.arraycopy(other(), 0, expected, 0, other().length);
    assertThat(first4KiB(vm)).isEqualTo(expected);
  }

  @Test
  void a_writer_token_reads_in_its_pattern_and_nothing_outside() throws IOException {
    String vm = create("vm");
    String db = create("db");
    RawHttp.Response own =
        both("GET", vm, ranged(bearer(SecurityIntegrationTest.VM_WRITER))).data();
    assertThat(own.status()).isEqualTo(206);
    RawHttp.Response other =
        both("GET", db, ranged(bearer(SecurityIntegrationTest.VM_WRITER))).data();
    assertThat(other.status()).isEqualTo(404);
  }
}
