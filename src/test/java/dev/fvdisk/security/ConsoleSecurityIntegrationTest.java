package dev.fvdisk.security;

import static io.restassured.RestAssured.given;
import static org.assertj.core.api.Assertions.assertThat;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.endsWith;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.hasItems;
import static org.hamcrest.Matchers.not;
import static org.hamcrest.Matchers.nullValue;
import static org.hamcrest.Matchers.startsWith;

import io.restassured.response.Response;
import io.restassured.specification.RequestSpecification;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

/**
 * The console with tokens configured, over plain HTTP: its page and assets need a token exactly as
 * the API does, every answer under {@code /console/} carries the strict Content-Security-Policy,
 * and the endpoints the console reads answer each role as they answer any client (the console holds
 * no rights of its own).
 */
@SpringBootTest(
    webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
    properties = {
      "server.address=127.0.0.1",
      "fvdisk.nbd.enabled=false",
      "fvdisk.security.tokens[0].name=ops",
      "fvdisk.security.tokens[0].secret=" + ConsoleSecurityIntegrationTest.ADMIN,
      "fvdisk.security.tokens[0].role=admin",
      "fvdisk.security.tokens[1].name=prometheus",
      "fvdisk.security.tokens[1].secret=" + ConsoleSecurityIntegrationTest.MONITOR,
      "fvdisk.security.tokens[1].role=monitor",
      "fvdisk.security.tokens[2].name=db-reader",
      "fvdisk.security.tokens[2].secret=" + ConsoleSecurityIntegrationTest.DB_READER,
      "fvdisk.security.tokens[2].role=reader",
      "fvdisk.security.tokens[2].images=db-*"
    })
class ConsoleSecurityIntegrationTest {

  static final String ADMIN = "console-admin-4b8e2a6c0d1f";
  static final String MONITOR = "console-monitor-9d3f7b1e5a2c";
  static final String DB_READER = "console-db-reader-6a0c4e8b2f1d";

  private static final String POLICY =
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
          + " connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

  /** The console's files and the content type each must have. */
  private static final Map<String, String> CONSOLE =
      Map.of(
          "/console/", "text/html",
          "/console/index.html", "text/html",
          "/console/console.js", "text/javascript",
          "/console/console.css", "text/css");

  @LocalServerPort int port;

  @DynamicPropertySource
  static void dataDir(DynamicPropertyRegistry registry) throws IOException {
    Path base = Files.createDirectories(Path.of("target", "it-data"));
    Path dir = Files.createTempDirectory(base, "console-security-");
    registry.add("fvdisk.data-dir", dir::toString);
  }

  private RequestSpecification anonymous() {
    return given().port(port).redirects().follow(false);
  }

  private RequestSpecification bearer(String token) {
    return anonymous().header("Authorization", "Bearer " + token);
  }

  private RequestSpecification basic(String token) {
    return anonymous().auth().preemptive().basic("operator", token);
  }

  @BeforeEach
  void images() {
    for (String name : List.of("db-orders", "vm-web")) {
      Response existing = bearer(ADMIN).get("/api/v1/images/" + name);
      if (existing.statusCode() == 404) {
        bearer(ADMIN)
            .contentType("application/json")
            .body(Map.of("name", name, "sizeBytes", 1 << 20))
            .post("/api/v1/images")
            .then()
            .statusCode(201);
      }
    }
  }

  @Test
  void the_console_needs_a_token_like_the_api_and_the_challenge_lets_a_browser_ask_for_one() {
    for (String path : List.of("/console", "/console/", "/console/console.js", "/api/v1/images")) {
      anonymous()
          .get(path)
          .then()
          .statusCode(401)
          .header("WWW-Authenticate", containsString("Basic realm=\"fvdisk\""))
          .contentType("application/problem+json");
      bearer("not-a-token").get(path).then().statusCode(401);
      basic("not-a-token").get(path).then().statusCode(401);
    }
    for (String path : CONSOLE.keySet()) {
      anonymous().get(path).then().statusCode(401).header("Content-Security-Policy", POLICY);
    }
  }

  @Test
  void every_token_loads_the_console_with_the_strict_policy() {
    for (String token : List.of(MONITOR, DB_READER, ADMIN)) {
      for (Map.Entry<String, String> file : CONSOLE.entrySet()) {
        for (RequestSpecification as : List.of(bearer(token), basic(token))) {
          as.get(file.getKey())
              .then()
              .statusCode(200)
              .contentType(startsWith(file.getValue()))
              .header("Content-Security-Policy", POLICY)
              .header("X-Content-Type-Options", "nosniff")
              .header("X-Frame-Options", "DENY");
        }
      }
    }
    // The folder without its slash leads to the page (its relative links need the slash).
    bearer(MONITOR)
        .get("/console")
        .then()
        .statusCode(302)
        .header("Location", endsWith("/console/"));
  }

  @Test
  void the_policy_stays_on_the_console_and_off_the_api() {
    bearer(ADMIN)
        .get("/api/v1/images")
        .then()
        .statusCode(200)
        .header("Content-Security-Policy", nullValue());
    // A missing file under the console is refused with the policy like any other answer there.
    bearer(ADMIN)
        .get("/console/missing.js")
        .then()
        .statusCode(404)
        .header("Content-Security-Policy", POLICY);
  }

  @Test
  void the_page_has_no_inline_script_or_style_that_the_policy_would_block() {
    String page = bearer(MONITOR).get("/console/").then().statusCode(200).extract().asString();
    assertThat(page).doesNotContainPattern(Pattern.compile("<script(?![^>]*\\bsrc=)[^>]*>"));
    assertThat(page).doesNotContainPattern(Pattern.compile("<style\\b"));
    assertThat(page).doesNotContainPattern(Pattern.compile("\\sstyle\\s*="));
    assertThat(page).doesNotContainPattern(Pattern.compile("\\son[a-z]+\\s*="));
    assertThat(page).doesNotContainPattern(Pattern.compile("javascript:"));
    String script =
        bearer(MONITOR).get("/console/console.js").then().statusCode(200).extract().asString();
    // Styles go through the CSSOM only; writing style attributes or HTML strings would be blocked
    // or unsafe.
    assertThat(script).doesNotContain("setAttribute('style'").doesNotContain("innerHTML");
  }

  @Test
  void the_endpoints_the_console_reads_answer_each_token_as_they_answer_any_client() {
    // A reader limited to db-* lists only its images and cannot see the storage totals.
    bearer(DB_READER)
        .get("/api/v1/images")
        .then()
        .statusCode(200)
        .body("images.name", equalTo(List.of("db-orders")));
    bearer(DB_READER).get("/api/v1/images/vm-web/map").then().statusCode(404);
    bearer(DB_READER).get("/actuator/storage").then().statusCode(403);
    bearer(DB_READER)
        .get("/actuator/health")
        .then()
        .statusCode(200)
        .body("status", equalTo("UP"))
        .body("components", nullValue());
    bearer(DB_READER).delete("/api/v1/images/db-orders").then().statusCode(403);

    // A monitor may look at the totals and health but not at images through the API.
    bearer(MONITOR)
        .get("/actuator/storage")
        .then()
        .statusCode(200)
        .body("images.name", hasItems("db-orders", "vm-web"));
    bearer(MONITOR)
        .get("/actuator/health")
        .then()
        .statusCode(200)
        .body("components.storage.details.openImages", not(nullValue()));
    bearer(MONITOR).get("/api/v1/images").then().statusCode(403);
    bearer(MONITOR)
        .get("/api/v1/images/vm-web/map")
        .then()
        .statusCode(403)
        .body("detail", containsString("prometheus"));

    // The admin sees everything.
    bearer(ADMIN)
        .get("/api/v1/images")
        .then()
        .statusCode(200)
        .body("images.name", hasItems("db-orders", "vm-web"));
  }
}
