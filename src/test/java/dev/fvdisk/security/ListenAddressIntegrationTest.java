package dev.fvdisk.security;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.fvdisk.FvdiskApplication;
import java.io.IOException;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.boot.test.system.CapturedOutput;
import org.springframework.boot.test.system.OutputCaptureExtension;
import org.springframework.boot.tomcat.TomcatWebServer;
import org.springframework.boot.web.server.context.WebServerApplicationContext;
import org.springframework.context.ConfigurableApplicationContext;

/**
 * The safe default, by starting the whole application: without tokens it listens on loopback only,
 * and it refuses to start on any other address unless the operator opts out.
 */
@ExtendWith(OutputCaptureExtension.class)
class ListenAddressIntegrationTest {

  private static SpringApplicationBuilder application(String... properties) throws IOException {
    Path base = Files.createDirectories(Path.of("target", "it-data"));
    Path dataDir = Files.createTempDirectory(base, "listen-");
    return new SpringApplicationBuilder(FvdiskApplication.class)
        .properties("server.port=0", "fvdisk.data-dir=" + dataDir)
        .properties(properties);
  }

  private static InetAddress boundAddress(ConfigurableApplicationContext context) {
    TomcatWebServer server =
        (TomcatWebServer) ((WebServerApplicationContext) context).getWebServer();
    return (InetAddress) server.getTomcat().getConnector().getProperty("address");
  }

  @Test
  void without_tokens_on_a_non_loopback_address_the_service_refuses_to_start(
      CapturedOutput output) {
    assertThatThrownBy(() -> application("server.address=0.0.0.0").run())
        .hasRootCauseInstanceOf(UnprotectedListenAddressException.class)
        .rootCause()
        .hasMessageStartingWith("Refusing to listen on 0.0.0.0 without access tokens");
    assertThat(output)
        .contains("APPLICATION FAILED TO START")
        .contains("Refusing to listen on 0.0.0.0 without access tokens")
        .contains("fvdisk.security.allow-unauthenticated=true");
  }

  @Test
  void without_tokens_and_without_an_address_the_service_listens_on_loopback_and_says_so(
      CapturedOutput output) throws IOException {
    try (ConfigurableApplicationContext context = application().run()) {
      assertThat(boundAddress(context).isLoopbackAddress()).isTrue();
      assertThat(output).contains("No access tokens configured").contains("loopback");
    }
  }

  @Test
  void the_explicit_opt_out_listens_anywhere_and_warns_loudly(CapturedOutput output)
      throws IOException {
    try (ConfigurableApplicationContext context =
        application("server.address=0.0.0.0", "fvdisk.security.allow-unauthenticated=true").run()) {
      assertThat(boundAddress(context).isAnyLocalAddress()).isTrue();
      assertThat(output).contains("WITHOUT ANY AUTHENTICATION");
    }
  }

  @Test
  void with_tokens_a_non_loopback_address_is_allowed(CapturedOutput output) throws IOException {
    try (ConfigurableApplicationContext context =
        application(
                "server.address=0.0.0.0",
                "fvdisk.security.tokens[0].secret=some-long-random-secret",
                "fvdisk.security.tokens[0].role=admin")
            .run()) {
      assertThat(boundAddress(context).isAnyLocalAddress()).isTrue();
      assertThat(output).contains("Access tokens required: 1 configured");
    }
  }

  @Test
  void a_token_without_a_role_stops_the_start_and_names_the_token() {
    assertThatThrownBy(
            () ->
                application("fvdisk.security.tokens[0].secret=s", "server.address=127.0.0.1").run())
        .rootCause()
        .hasMessageContaining("fvdisk.security.tokens[0] (token-0): role is required");
  }
}
