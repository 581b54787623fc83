package dev.fvdisk.nbd;

import static io.restassured.RestAssured.given;
import static org.assertj.core.api.Assertions.assertThat;

import dev.fvdisk.config.NbdListener;
import dev.fvdisk.testing.NbdTools;
import dev.fvdisk.testing.QemuImg;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

/**
 * NBD with access tokens: the listener requires TLS and a client certificate, and the certificate's
 * subject acts as a token. Certificates are made by the test with openssl: a CA, the server's, a
 * writer's and a reader's (each named by a token), a stranger's from the same CA that no token
 * names, and one from another CA. Clients are libnbd's Python module and QEMU's qemu-io.
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT)
class NbdTlsIntegrationTest {

  private static final String ADMIN = "nbd-tls-admin-secret";
  private static final String IMAGES = "/api/v1/images";

  @TempDir static Path work;

  static Path pki;

  @DynamicPropertySource
  static void properties(DynamicPropertyRegistry registry) throws Exception {
    pki = makePki(work.resolve("pki"));
    registry.add("fvdisk.data-dir", () -> work.resolve("data").toString());
    registry.add(
        "spring.ssl.bundle.pem.nbd.keystore.certificate",
        () -> "file:" + pki.resolve("server/server-cert.pem"));
    registry.add(
        "spring.ssl.bundle.pem.nbd.keystore.private-key",
        () -> "file:" + pki.resolve("server/server-key.pem"));
    registry.add(
        "spring.ssl.bundle.pem.nbd.truststore.certificate",
        () -> "file:" + pki.resolve("server/ca-cert.pem"));
    registry.add("fvdisk.nbd.tls.bundle", () -> "nbd");
    registry.add("fvdisk.security.tokens[0].name", () -> "ops");
    registry.add("fvdisk.security.tokens[0].secret", () -> ADMIN);
    registry.add("fvdisk.security.tokens[0].role", () -> "admin");
    registry.add("fvdisk.security.tokens[1].name", () -> "vm-host");
    registry.add("fvdisk.security.tokens[1].secret", () -> "nbd-tls-writer-secret");
    registry.add("fvdisk.security.tokens[1].role", () -> "writer");
    registry.add("fvdisk.security.tokens[1].images", () -> "tls-*");
    registry.add(
        "fvdisk.security.tokens[1].certificate-subject", () -> "CN=writer-host,O=fvdisk test");
    registry.add("fvdisk.security.tokens[2].name", () -> "backup");
    registry.add("fvdisk.security.tokens[2].secret", () -> "nbd-tls-reader-secret");
    registry.add("fvdisk.security.tokens[2].role", () -> "reader");
    registry.add("fvdisk.security.tokens[2].images", () -> "tls-*");
    registry.add(
        "fvdisk.security.tokens[2].certificate-subject", () -> "CN=reader-host,O=fvdisk test");
  }

  @LocalServerPort int httpPort;
  @Autowired NbdListener nbd;

  @BeforeEach
  void images() {
    for (String name : List.of("tls-disk", "secret-disk")) {
      int status =
          given()
              .port(httpPort)
              .header("Authorization", "Bearer " + ADMIN)
              .contentType("application/json")
              .body(Map.of("name", name, "sizeBytes", 4 << 20))
              .post(IMAGES)
              .then()
              .extract()
              .statusCode();
      assertThat(status).isIn(201, 409);
    }
  }

  /** Runs a Python snippet with libnbd; {@code h} is a handle set up for the client's directory. */
  private String python(String clientDir, String uriTail, String... lines) throws Exception {
    String setup =
        String.join(
            "\n",
            "import nbd, sys",
            "h = nbd.NBD()",
            "h.set_strict_mode(0)",
            clientDir == null
                ? "h.set_tls(nbd.TLS_DISABLE)"
                : "h.set_tls(nbd.TLS_REQUIRE); h.set_tls_certificates('"
                    + pki.resolve(clientDir)
                    + "')",
            "try:",
            "    h.connect_uri('"
                + (clientDir == null ? "nbd" : "nbds")
                + "://127.0.0.1:"
                + nbd.port()
                + uriTail
                + "')",
            "except nbd.Error as e:",
            "    print('connect failed:', e.string); sys.exit(0)",
            String.join("\n", lines));
    return QemuImg.run(work, NbdTools.PYTHON, "-c", setup);
  }

  @Test
  void a_writer_certificate_writes_its_images_and_sees_only_them() throws Exception {
    NbdTools.assumeAvailable();
    String out =
        python(
            "writer",
            "/tls-disk",
            "h.pwrite(b'tls!' * 128, 4096, nbd.CMD_FLAG_FUA)",
            "print('read-only', h.is_read_only())",
            "print('back', h.pread(4, 4096))");
    assertThat(out).contains("read-only False").contains("back bytearray(b'tls!')");
    byte[] back =
        given()
            .port(httpPort)
            .header("Authorization", "Bearer " + ADMIN)
            .header("Range", "bytes=4096-4099")
            .get(IMAGES + "/tls-disk/data")
            .then()
            .statusCode(206)
            .extract()
            .asByteArray();
    assertThat(new String(back)).isEqualTo("tls!");

    String list =
        QemuImg.run(
            work,
            "nbdinfo",
            "--list",
            "nbds://127.0.0.1:" + nbd.port() + "?tls-certificates=" + pki.resolve("writer"));
    assertThat(list).contains("tls-disk").doesNotContain("secret-disk");
    assertThat(python("writer", "/secret-disk", "print('attached')"))
        .as("an image outside the token's patterns is unknown")
        .contains("connect failed")
        .doesNotContain("attached");
  }

  @Test
  void a_reader_certificate_gets_a_read_only_export() throws Exception {
    NbdTools.assumeAvailable();
    String out =
        python(
            "reader",
            "/tls-disk",
            "print('read-only', h.is_read_only())",
            "try:",
            "    h.pwrite(b'x', 0); print('write ok')",
            "except nbd.Error as e:",
            "    print('write', e.errno)");
    assertThat(out).contains("read-only True").contains("write EPERM");
  }

  @Test
  void plaintext_strangers_and_other_authorities_get_nothing() throws Exception {
    NbdTools.assumeAvailable();
    assertThat(python(null, "/tls-disk", "print('attached')"))
        .contains("connect failed")
        .doesNotContain("attached");
    assertThat(python("stranger", "/tls-disk", "print('attached')"))
        .contains("connect failed")
        .doesNotContain("attached");
    assertThat(python("foreign", "/tls-disk", "print('attached')"))
        .contains("connect failed")
        .doesNotContain("attached");
    // QEMU without TLS is told that TLS is required.
    Process qemu =
        new ProcessBuilder(
                "qemu-io",
                "-f",
                "raw",
                "-c",
                "read 0 512",
                "nbd://127.0.0.1:" + nbd.port() + "/tls-disk")
            .redirectErrorStream(true)
            .start();
    String text = new String(qemu.getInputStream().readAllBytes());
    assertThat(qemu.waitFor()).isNotZero();
    assertThat(text).containsIgnoringCase("TLS");
  }

  @Test
  void qemu_reads_and_writes_over_tls_with_its_x509_credentials() throws Exception {
    NbdTools.assumeAvailable();
    String out =
        QemuImg.run(
            work,
            "qemu-io",
            "--object",
            "tls-creds-x509,id=tls0,dir=" + pki.resolve("writer") + ",endpoint=client",
            "--image-opts",
            "driver=nbd,server.type=inet,server.host=127.0.0.1,server.port="
                + nbd.port()
                + ",export=tls-disk,tls-creds=tls0",
            "-c",
            "write -P 0x42 1M 64k",
            "-c",
            "read -P 0x42 1M 64k");
    assertThat(out).doesNotContain("Pattern verification failed");
  }

  // ---- certificates ----

  private static Path makePki(Path dir) throws Exception {
    Files.createDirectories(dir);
    openssl(
        dir,
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca-key.pem",
        "-out",
        "ca-cert.pem",
        "-days",
        "30",
        "-subj",
        "/CN=fvdisk test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign");
    openssl(
        dir,
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "other-ca-key.pem",
        "-out",
        "other-ca-cert.pem",
        "-days",
        "30",
        "-subj",
        "/CN=another CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign");
    issue(
        dir,
        "server",
        "server",
        "/CN=localhost",
        "serverAuth",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "ca");
    issue(dir, "writer", "client", "/O=fvdisk test/CN=writer-host", "clientAuth", null, "ca");
    issue(dir, "reader", "client", "/O=fvdisk test/CN=reader-host", "clientAuth", null, "ca");
    issue(dir, "stranger", "client", "/O=fvdisk test/CN=stranger", "clientAuth", null, "ca");
    issue(
        dir, "foreign", "client", "/O=fvdisk test/CN=writer-host", "clientAuth", null, "other-ca");
    return dir;
  }

  /**
   * A key and certificate signed by {@code ca}, in {@code dir/who/} under the file names QEMU and
   * libnbd look for ({@code <role>-cert.pem}, {@code <role>-key.pem}, {@code ca-cert.pem}).
   */
  private static void issue(
      Path dir, String who, String role, String subject, String usage, String san, String ca)
      throws Exception {
    Path out = Files.createDirectories(dir.resolve(who));
    // Clients get ECDSA keys: under TLS 1.3 Java 21 and later ask for RSA-PSS signatures only, and
    // GnuTLS (libnbd, QEMU) then sends no RSA client certificate at all (docs/nbd.md).
    boolean client = role.equals("client");
    String ext =
        "basicConstraints=CA:FALSE\nkeyUsage="
            + (client ? "digitalSignature" : "digitalSignature,keyEncipherment")
            + "\nextendedKeyUsage="
            + usage
            + "\n"
            + (san == null ? "" : san + "\n");
    Files.writeString(out.resolve("ext.cnf"), ext);
    openssl(
        out,
        "req",
        "-newkey",
        client ? "ec" : "rsa:2048",
        "-pkeyopt",
        client ? "ec_paramgen_curve:prime256v1" : "rsa_keygen_bits:2048",
        "-nodes",
        "-keyout",
        role + "-key.pem",
        "-out",
        "req.pem",
        "-subj",
        subject);
    openssl(
        out,
        "x509",
        "-req",
        "-in",
        "req.pem",
        "-CA",
        "../" + ca + "-cert.pem",
        "-CAkey",
        "../" + ca + "-key.pem",
        "-CAcreateserial",
        "-out",
        role + "-cert.pem",
        "-days",
        "30",
        "-extfile",
        "ext.cnf");
    // Both sides trust the test CA, whoever signed this pair.
    Files.copy(dir.resolve("ca-cert.pem"), out.resolve("ca-cert.pem"));
  }

  private static void openssl(Path dir, String... args) throws Exception {
    String[] command = new String[args.length + 1];
    command[0] = "openssl";
    System.arraycopy(args, 0, command, 1, args.length);
    try {
      QemuImg.run(dir, command);
    } catch (IOException e) {
      throw new IOException("openssl is needed to make the test's certificates", e);
    }
  }
}
