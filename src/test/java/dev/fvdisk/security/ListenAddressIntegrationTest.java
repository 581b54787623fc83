package dev.fvdisk.security;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.fvdisk.FvdiskApplication;
import java.io.IOException;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
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

  /**
   * Starts the application on a data directory of its own. The settings go in as command-line
   * arguments: as the builder's default properties, {@code application.properties} would override
   * them, and the data directory would be {@code ./data}.
   */
  private static ConfigurableApplicationContext start(String... properties) throws IOException {
    Path base = Files.createDirectories(Path.of("target", "it-data"));
    Path dataDir = Files.createTempDirectory(base, "listen-");
    List<String> args =
        new ArrayList<>(
            List.of("--server.port=0", "--fvdisk.nbd.port=0", "--fvdisk.data-dir=" + dataDir));
    for (String property : properties) {
      args.add("--" + property);
    }
    return new SpringApplicationBuilder(FvdiskApplication.class).run(args.toArray(String[]::new));
  }

  private static InetAddress boundAddress(ConfigurableApplicationContext context) {
    TomcatWebServer server =
        (TomcatWebServer) ((WebServerApplicationContext) context).getWebServer();
    return (InetAddress) server.getTomcat().getConnector().getProperty("address");
  }

  @Test
  void without_tokens_on_a_non_loopback_address_the_service_refuses_to_start(
      CapturedOutput output) {
    assertThatThrownBy(() -> start("server.address=0.0.0.0"))
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
    try (ConfigurableApplicationContext context = start()) {
      assertThat(boundAddress(context).isLoopbackAddress()).isTrue();
      assertThat(output).contains("No access tokens configured").contains("loopback");
    }
  }

  @Test
  void the_explicit_opt_out_listens_anywhere_and_warns_loudly(CapturedOutput output)
      throws IOException {
    try (ConfigurableApplicationContext context =
        start("server.address=0.0.0.0", "fvdisk.security.allow-unauthenticated=true")) {
      assertThat(boundAddress(context).isAnyLocalAddress()).isTrue();
      assertThat(output).contains("WITHOUT ANY AUTHENTICATION");
    }
  }

  @Test
  void with_tokens_a_non_loopback_address_is_allowed(CapturedOutput output) throws IOException {
    try (ConfigurableApplicationContext context =
        start(
            "server.address=0.0.0.0",
            "fvdisk.security.tokens[0].secret=some-long-random-secret",
            "fvdisk.security.tokens[0].role=admin")) {
      assertThat(boundAddress(context).isAnyLocalAddress()).isTrue();
      assertThat(output).contains("Access tokens required: 1 configured");
    }
  }

  @Test
  void a_token_without_a_role_stops_the_start_and_names_the_token() {
    assertThatThrownBy(
            () -> start("fvdisk.security.tokens[0].secret=s", "server.address=127.0.0.1"))
        .rootCause()
        .hasMessageContaining("fvdisk.security.tokens[0] (token-0): role is required");
  }
}
