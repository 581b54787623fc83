package dev.fvdisk.nbd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.fvdisk.FvdiskApplication;
import dev.fvdisk.config.NbdListener;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.boot.test.system.CapturedOutput;
import org.springframework.boot.test.system.OutputCaptureExtension;
import org.springframework.context.ConfigurableApplicationContext;

/**
 * When the NBD listener starts, and when it refuses to: by starting the whole application with the
 * settings an operator would use.
 */
@ExtendWith(OutputCaptureExtension.class)
class NbdStartupIntegrationTest {

  /**
   * Starts the application with {@code properties} as command-line arguments, which take precedence
   * over every application.properties (the builder's own properties would not).
   */
  private static ConfigurableApplicationContext run(String... properties) throws IOException {
    Path base = Files.createDirectories(Path.of("target", "it-data"));
    Path dataDir = Files.createTempDirectory(base, "nbd-start-");
    // By name, as a second argument of the same name would be joined to the first with a comma.
    Map<String, String> values = new LinkedHashMap<>();
    values.put("server.port", "0");
    values.put("fvdisk.data-dir", dataDir.toString());
    values.put("fvdisk.nbd.port", "0");
    for (String property : properties) {
      int eq = property.indexOf('=');
      values.put(property.substring(0, eq), property.substring(eq + 1));
    }
    List<String> args = new ArrayList<>();
    values.forEach((name, value) -> args.add("--" + name + "=" + value));
    return new SpringApplicationBuilder(FvdiskApplication.class).run(args.toArray(String[]::new));
  }

  @Test
  void a_non_loopback_address_without_tls_stops_the_start_with_the_reason() {
    assertThatThrownBy(() -> run("fvdisk.nbd.address=0.0.0.0"))
        .rootCause()
        .hasMessageContaining("fvdisk.nbd.address 0.0.0.0 is not a loopback address")
        .hasMessageContaining("fvdisk.nbd.tls.bundle");
  }

  @Test
  void with_tokens_and_without_tls_nbd_stays_off_and_says_why(CapturedOutput output)
      throws IOException {
    try (ConfigurableApplicationContext context =
        run(
            "fvdisk.security.tokens[0].secret=some-long-random-secret",
            "fvdisk.security.tokens[0].role=admin")) {
      NbdListener listener = context.getBean(NbdListener.class);
      assertThat(listener.isRunning()).isFalse();
      assertThat(listener.port()).isEqualTo(-1);
      assertThat(output).contains("NBD is not started: access tokens are configured");
    }
  }

  @Test
  void a_port_in_use_stops_the_start_and_names_the_setting() throws IOException {
    try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      assertThatThrownBy(() -> run("fvdisk.nbd.port=" + taken.getLocalPort()))
          .hasStackTraceContaining("NBD cannot listen on 127.0.0.1:" + taken.getLocalPort())
          .hasStackTraceContaining("fvdisk.nbd.port");
    }
  }

  @Test
  void disabled_there_is_no_listener() throws IOException {
    try (ConfigurableApplicationContext context = run("fvdisk.nbd.enabled=false")) {
      assertThat(context.getBeansOfType(NbdListener.class)).isEmpty();
    }
  }
}
