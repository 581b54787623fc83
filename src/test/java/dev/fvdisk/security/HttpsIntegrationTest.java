package dev.fvdisk.security;

import static io.restassured.RestAssured.given;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

/**
 * HTTPS exactly as docs/security.md configures it: an SSL bundle from a PKCS#12 key store, here
 * made by the JDK's keytool for this test, with tokens sent over the encrypted connection.
 */
@SpringBootTest(
    webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
    properties = {
      "server.address=127.0.0.1",
      "server.ssl.bundle=fvdisk",
      "spring.ssl.bundle.jks.fvdisk.keystore.password=" + HttpsIntegrationTest.PASSWORD,
      "spring.ssl.bundle.jks.fvdisk.keystore.type=PKCS12",
      "fvdisk.security.tokens[0].secret=" + HttpsIntegrationTest.TOKEN,
      "fvdisk.security.tokens[0].role=reader"
    })
class HttpsIntegrationTest {

  static final String PASSWORD = "changeit-for-test";
  static final String TOKEN = "https-reader-4b8d2f6a0c1e";

  @LocalServerPort int port;

  @DynamicPropertySource
  static void keyStore(DynamicPropertyRegistry registry) throws Exception {
    Path base = Files.createDirectories(Path.of("target", "it-data"));
    Path dir = Files.createTempDirectory(base, "https-");
    Path keyStore = dir.resolve("fvdisk.p12");
    String keytool = Path.of(System.getProperty("java.home"), "bin", "keytool").toString();
    Process p =
        new ProcessBuilder(
                keytool,
                "-genkeypair",
                "-alias",
                "fvdisk",
                "-keyalg",
                "EC",
                "-groupname",
                "secp256r1",
                "-storetype",
                "PKCS12",
                "-keystore",
                keyStore.toString(),
                "-storepass",
                PASSWORD,
                "-dname",
                "CN=localhost",
                "-ext",
                "san=dns:localhost,ip:127.0.0.1",
                "-validity",
                "2")
            .redirectErrorStream(true)
            .start();
    String output = new String(p.getInputStream().readAllBytes());
    if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
      throw new IOException("keytool failed: " + output);
    }
    registry.add(
        "spring.ssl.bundle.jks.fvdisk.keystore.location",
        () -> "file:" + keyStore.toAbsolutePath());
    registry.add("fvdisk.data-dir", () -> dir.resolve("data").toString());
  }

  @Test
  void serves_https_and_takes_tokens_over_it() {
    given()
        .baseUri("https://127.0.0.1")
        .port(port)
        .relaxedHTTPSValidation()
        .header("Authorization", "Bearer " + TOKEN)
        .get("/api/v1/images")
        .then()
        .statusCode(200);
    given()
        .baseUri("https://127.0.0.1")
        .port(port)
        .relaxedHTTPSValidation()
        .get("/api/v1/images")
        .then()
        .statusCode(401);
  }

  @Test
  void plain_http_on_the_same_port_gets_no_api_answer() {
    int status;
    try {
      status =
          given()
              .baseUri("http://127.0.0.1")
              .port(port)
              .header("Authorization", "Bearer " + TOKEN)
              .get("/api/v1/images")
              .statusCode();
    } catch (RuntimeException e) {
      return; // the TLS port hung up on plain HTTP
    }
    // Tomcat answers plain HTTP on a TLS port with 400; never with the API.
    assertThat(status).isEqualTo(400);
  }
}
