package dev.fvdisk.web;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import dev.fvdisk.FvdiskApplication;
import dev.fvdisk.testing.RawHttp;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.EdgeCasesMode;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.ShrinkingMode;
import net.jqwik.api.Tuple;
import net.jqwik.api.lifecycle.AfterContainer;
import net.jqwik.api.lifecycle.BeforeContainer;
import net.jqwik.api.statistics.Statistics;
import org.slf4j.LoggerFactory;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.web.server.context.WebServerApplicationContext;
import org.springframework.context.ConfigurableApplicationContext;

/**
 * A generative fuzz test of the HTTP interface: random methods, paths (the OpenAPI document's, and
 * nasty ones), query strings, headers and bodies, drawn from the contract's parameters and from a
 * hand-written list of inputs that broke services before. For every request:
 *
 * <ul>
 *   <li>the answer is never a 5xx;
 *   <li>every 4xx is an {@code application/problem+json} problem;
 *   <li>a refused request changes nothing: the image list, every image's descriptor and a SHA-256
 *       of every image's data are the same before and after;
 *   <li>no ERROR line is logged: a client's mistake is not the operator's problem.
 * </ul>
 *
 * <p>jqwik prints the seed of a failing run; put it in {@code @Property(seed = "...")} to repeat
 * the run. The server is the real one on a random port, started once for all tries, with three
 * small images (a plain one, a read-only base and its clone) put back as they were after every
 * request that changed something.
 */
class HttpFuzzIntegrationTest {

  private static final String IMAGES = "/api/v1/images";
  private static final List<String> FIXTURES = List.of("fuzz-plain", "fuzz-golden", "fuzz-clone");
  private static final long SIZE = 64 << 10;
  private static final Set<String> SAFE_METHODS = Set.of("GET", "HEAD", "OPTIONS");

  private static ConfigurableApplicationContext server;
  private static int port;
  private static int dataPort;
  private static final ListAppender<ILoggingEvent> LOG = new ListAppender<>();

  @BeforeContainer
  static void startServer() throws IOException {
    Path dir =
        Files.createTempDirectory(Files.createDirectories(Path.of("target", "it-data")), "fuzz-");
    server =
        SpringApplication.run(
            FvdiskApplication.class,
            "--server.port=0",
            "--server.address=127.0.0.1",
            "--fvdisk.data-dir=" + dir,
            "--fvdisk.http-data.enabled=true",
            "--fvdisk.http-data.port=0",
            "--spring.main.banner-mode=off");
    port = ((WebServerApplicationContext) server).getWebServer().getPort();
    dataPort = server.getBean(DataPort.class).port();
    Logger root = (Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
    LOG.start();
    root.addAppender(LOG);
    resetFixtures();
  }

  @AfterContainer
  static void stopServer() {
    ((Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME)).detachAppender(LOG);
    if (server != null) {
      server.close();
    }
  }

  /**
   * One request as sent: the fuzzer's choices, printed when a try fails. One in three goes to the
   * data port, the lean listener beside Tomcat, which must keep the same promises.
   */
  record Request(
      boolean toDataPort, String method, String target, Map<String, String> headers, byte[] body) {
    @Override
    public String toString() {
      String shown = new String(body, 0, Math.min(body.length, 300), StandardCharsets.ISO_8859_1);
      return (toDataPort ? "(data port) " : "")
          + method
          + " "
          + target
          + " "
          + headers
          + " body("
          + body.length
          + ")="
          + shown;
    }
  }

  @Property(tries = 600, shrinking = ShrinkingMode.OFF, edgeCases = EdgeCasesMode.NONE)
  void every_answer_is_a_problem_or_a_success_and_refusals_change_nothing(
      @ForAll("requests") Request request) throws IOException {
    Map<String, String> before = state();
    int logged = LOG.list.size();
    RawHttp.Response answer =
        RawHttp.exchange(
            request.toDataPort() ? dataPort : port,
            request.method(),
            request.target(),
            request.headers(),
            request.body());
    String context = request + "\n  answered " + answer;
    // The report shows the mix, so a run that only ever got refusals would be seen for what it is.
    Statistics.collect(
        (request.toDataPort() ? "data port " : "main port ")
            + (answer.status() == 501 ? "501 (CONNECT)" : answer.status() / 100 + "xx"));

    // CONNECT is the one exception: Tomcat refuses it itself with 501 Not Implemented, the status
    // HTTP prescribes for a method the server does not implement at all (still as a problem).
    if (!(answer.status() == 501 && request.method().equals("CONNECT"))) {
      assertThat(answer.status()).as(context).isBetween(100, 499);
    }
    if (answer.status() >= 400) {
      assertThat(answer.header("Content-Type")).as(context).startsWith("application/problem+json");
      assertThat(state()).as("a refused request changed state: " + context).isEqualTo(before);
    }
    List<String> errors = new ArrayList<>();
    for (ILoggingEvent event : List.copyOf(LOG.list.subList(logged, LOG.list.size()))) {
      if (event.getLevel().isGreaterOrEqual(Level.ERROR)) {
        errors.add(event.getFormattedMessage());
      }
    }
    assertThat(errors).as("ERROR lines for " + context).isEmpty();
    if (answer.status() < 400 && !SAFE_METHODS.contains(request.method())) {
      resetFixtures();
    }
  }

  // ---- what is compared before and after a request ----

  private static Map<String, String> state() throws IOException {
    Map<String, String> state = new TreeMap<>();
    state.put("(list)", get(IMAGES).text().replaceAll("\"createdAt\":\"[^\"]*\"", ""));
    for (String name : FIXTURES) {
      state.put(name, sha256(get(IMAGES + "/" + name + "/data").body()));
    }
    return state;
  }

  private static RawHttp.Response get(String target) throws IOException {
    return RawHttp.exchange(port, "GET", target, Map.of(), new byte[0]);
  }

  /** Every image deleted, the three fixtures made anew (clones before their bases go). */
  private static void resetFixtures() throws IOException {
    for (int round = 0; round < 3; round++) {
      Matcher names = Pattern.compile("\"name\":\"([^\"]+)\"").matcher(get(IMAGES).text());
      while (names.find()) {
        RawHttp.exchange(port, "DELETE", IMAGES + "/" + names.group(1), Map.of(), new byte[0]);
      }
    }
    json("POST", IMAGES, "{\"name\":\"fuzz-plain\",\"sizeBytes\":" + SIZE + "}", 201);
    json("POST", IMAGES, "{\"name\":\"fuzz-golden\",\"sizeBytes\":" + SIZE + "}", 201);
    put("fuzz-plain", 1000, 3000);
    put("fuzz-golden", 0, (int) SIZE);
    json("PATCH", IMAGES + "/fuzz-golden", "{\"readOnly\":true}", 200);
    json("POST", IMAGES, "{\"name\":\"fuzz-clone\",\"base\":\"fuzz-golden\"}", 201);
    put("fuzz-clone", 4096, 512);
  }

  private static void json(String method, String target, String body, int expected)
      throws IOException {
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    RawHttp.Response answer =
        RawHttp.exchange(
            port,
            method,
            target,
            Map.of("Content-Type", "application/json", "Content-Length", "" + bytes.length),
            bytes);
    assertThat(answer.status()).as(answer.toString()).isEqualTo(expected);
  }

  private static void put(String name, long offset, int length) throws IOException {
    byte[] data = new byte[length];
    for (int i = 0; i < length; i++) {
      data[i] = (byte) (i * 7 + name.length());
    }
    RawHttp.Response answer =
        RawHttp.exchange(
            port,
            "PUT",
            IMAGES + "/" + name + "/data",
            Map.of(
                "Content-Type", "application/octet-stream",
                "Content-Range", "bytes " + offset + "-" + (offset + length - 1) + "/*",
                "Content-Length", "" + length),
            data);
    assertThat(answer.status()).as(answer.toString()).isEqualTo(204);
  }

  private static String sha256(byte[] data) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  // ---- the generators ----

  /** The paths of the committed OpenAPI document, with their parameters still in braces. */
  private static List<String> contractPaths() {
    try {
      return Files.readAllLines(Path.of("openapi", "openapi.yaml")).stream()
          .filter(line -> line.matches("^  /\\S*:\\s*$"))
          .map(line -> line.trim().replaceAll(":$", ""))
          .collect(Collectors.toList());
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  @Provide
  Arbitrary<Request> requests() {
    Arbitrary<String> method =
        Arbitraries.frequencyOf(
            Tuple.of(6, Arbitraries.of("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")),
            Tuple.of(1, Arbitraries.of("TRACE", "QUERY", "FOO", "get", "PROPFIND", "CONNECT")));
    Arbitrary<String> target = Combinators.combine(path(), query()).as((p, q) -> p + q);
    Arbitrary<Map<String, String>> headers = headers();
    Arbitrary<byte[]> body = body();
    Arbitrary<Boolean> chunked = Arbitraries.of(true, false, false, false);
    Arbitrary<Boolean> toDataPort = Arbitraries.of(true, false, false);
    return Combinators.combine(toDataPort, method, target, headers, body, chunked)
        .as(
            (d, m, t, h, b, c) -> {
              Map<String, String> all = new LinkedHashMap<>(h);
              byte[] sent = b;
              if (c) {
                all.put("Transfer-Encoding", "chunked");
                sent = RawHttp.chunked(b, 1000);
              } else if (b.length > 0 || m.equals("PUT") || m.equals("POST")) {
                all.putIfAbsent("Content-Length", String.valueOf(b.length));
              }
              return new Request(d, m, t, all, sent);
            });
  }

  private static Arbitrary<String> path() {
    Arbitrary<String> name =
        Arbitraries.of(
            "fuzz-plain",
            "fuzz-golden",
            "fuzz-clone",
            "no-such-image",
            "..",
            ".",
            "%2e%2e",
            "a%2Fb",
            "a%FF",
            "%00",
            "A",
            "-x",
            "x".repeat(64),
            "fuzz-plain;x=1",
            "fuzz%2Dplain",
            "%");
    Arbitrary<String> sector =
        Arbitraries.of(
            "0",
            "1",
            "127",
            "128",
            "-1",
            "9223372036854775807",
            "18446744073709551616",
            "x",
            "1e3",
            "0x10",
            "%30");
    Arbitrary<String> contract =
        Combinators.combine(Arbitraries.of(contractPaths()), name, sector)
            .as(
                (p, n, s) ->
                    p.replace("{name}", n)
                        .replace("{firstSector}", s)
                        .replace("{snapshot}", "fuzz-snapshot"));
    Arbitrary<String> other =
        Arbitraries.of(
            "/",
            "/api",
            "/api/v1",
            "/api/v1/images/",
            "//api/v1/images",
            "/api/v1/images/fuzz-plain/data/",
            "/api/v1/images/fuzz-plain/../fuzz-clone/data",
            "/api/v1/images/fuzz-plain/sectors",
            "/actuator",
            "/actuator/health",
            "/actuator/storage",
            "/actuator/info",
            "/actuator/metrics",
            "/actuator/metrics/fvdisk.storage.used",
            "/actuator/prometheus",
            "/actuator/env",
            "/actuator/heapdump",
            "/error",
            "/openapi/openapi.yaml",
            "/v3/api-docs",
            "/swagger-ui/index.html",
            "/x%FFy",
            "/%");
    return Arbitraries.frequencyOf(Tuple.of(4, contract), Tuple.of(1, other));
  }

  private static Arbitrary<String> query() {
    Arbitrary<String> pair =
        Combinators.combine(
                Arbitraries.of(
                    "flush", "repair", "count", "offsetBytes", "lengthBytes", "x", "", "%zz"),
                Arbitraries.of(
                    "true",
                    "false",
                    "1",
                    "0",
                    "-1",
                    "maybe",
                    "9223372036854775808",
                    "",
                    "%FF",
                    "%",
                    "512",
                    "65536"))
            .as((k, v) -> k + "=" + v);
    Arbitrary<String> raw = Arbitraries.of("=x", "%zz=1", "a=%", "&&", "a=%FF", ";", "a", "a=b=c");
    return Arbitraries.oneOf(pair, raw)
        .list()
        .ofMaxSize(3)
        .map(parts -> parts.isEmpty() ? "" : "?" + String.join("&", parts));
  }

  private static Arbitrary<Map<String, String>> headers() {
    Arbitrary<String> contentType =
        Arbitraries.of(
            "application/json",
            "application/octet-stream",
            "application/x-www-form-urlencoded",
            "application/merge-patch+json",
            "text/plain",
            "application/json; charset=ebcdic",
            "garbage",
            "multipart/form-data; boundary=x",
            "");
    Arbitrary<String> range =
        Arbitraries.of(
            "bytes=0-511",
            "bytes=0-",
            "bytes=-512",
            "bytes=5-1",
            "bytes=0-1,4-5",
            "bytes=99999999999-",
            "items=0-1",
            "bytes=-0",
            "bytes=x-y",
            "bytes=0-18446744073709551616");
    Arbitrary<String> contentRange =
        Arbitraries.of(
            "bytes 0-3/*",
            "bytes 0-3/65536",
            "bytes 100-103/*",
            "bytes 5-1/*",
            "bytes 0-99999999999/*",
            "bytes */65536",
            "bytes 65535-65538/*",
            "garbage");
    Arbitrary<String> ifMatch = Arbitraries.of("*", "\"x\"", "garbage", "W/\"x\"", "");
    Arbitrary<String> accept =
        Arbitraries.of("*/*", "application/xml", "text/html", "application/json");
    return Combinators.combine(
            contentType.injectNull(0.3),
            range.injectNull(0.6),
            contentRange.injectNull(0.6),
            ifMatch.injectNull(0.8),
            accept.injectNull(0.7))
        .as(
            (ct, r, cr, im, a) -> {
              Map<String, String> h = new LinkedHashMap<>();
              if (ct != null) {
                h.put("Content-Type", ct);
              }
              if (r != null) {
                h.put("Range", r);
              }
              if (cr != null) {
                h.put("Content-Range", cr);
              }
              if (im != null) {
                h.put("If-Match", im);
              }
              if (a != null) {
                h.put("Accept", a);
              }
              return h;
            });
  }

  private static Arbitrary<byte[]> body() {
    Arbitrary<String> number =
        Arbitraries.of(
            "0",
            "1",
            "512",
            "65536",
            "131072",
            "-1",
            "1.5",
            "1e309",
            "9223372036854775808",
            "\"512\"",
            "null",
            "true",
            "[]",
            "4096",
            "1099511627776000");
    Arbitrary<String> name =
        Arbitraries.of(
            "\"fuzz-new\"",
            "\"fuzz-plain\"",
            "\"fuzz-golden\"",
            "\"..\"",
            "\"A\"",
            "1",
            "null",
            "\"\"",
            "\"x\\u0000\"");
    Arbitrary<String> bool = Arbitraries.of("true", "false", "null", "1", "\"true\"");
    Arbitrary<String> create =
        Combinators.combine(name, number, name, number, bool)
            .as(
                (n, size, base, chunk, cor) ->
                    "{\"name\":"
                        + n
                        + ",\"sizeBytes\":"
                        + size
                        + ",\"base\":"
                        + base
                        + ",\"chunkSizeBytes\":"
                        + chunk
                        + ",\"copyOnRead\":"
                        + cor
                        + "}");
    Arbitrary<String> patch =
        Combinators.combine(number, bool, bool, number)
            .as(
                (size, ro, pf, delay) ->
                    "{\"sizeBytes\":"
                        + size
                        + ",\"readOnly\":"
                        + ro
                        + ",\"prefetch\":{\"enabled\":"
                        + pf
                        + ",\"startDelaySeconds\":"
                        + delay
                        + "}}");
    Arbitrary<String> operation =
        Combinators.combine(
                Arbitraries.of("\"zero\"", "\"flush\"", "\"trim\"", "null", "1"), number, number)
            .as(
                (op, off, len) ->
                    "{\"op\":" + op + ",\"offsetBytes\":" + off + ",\"lengthBytes\":" + len + "}");
    Arbitrary<String> nasty =
        Arbitraries.of(
            "{",
            "[]",
            "null",
            "\"x\"",
            "{\"a\":".repeat(2000),
            "[".repeat(5000),
            "{\"name\":\"fuzz-x\",\"sizeBytes\":512,\"sizeBytes\":1024}",
            "{\"name\":\"fuzz-x\",\"sizeBytes\":512,\"unknown\":1}",
            "{\"op\":\"zero\"}",
            "{\"op\":\"flush\",\"offsetBytes\":0}",
            "\uFEFF{}",
            "{\"name\":\"" + "y".repeat(70_000) + "\"}");
    Arbitrary<byte[]> json =
        Arbitraries.oneOf(create, patch, operation, nasty)
            .map(s -> s.getBytes(StandardCharsets.UTF_8));
    Arbitrary<byte[]> binary = Arbitraries.bytes().array(byte[].class).ofMaxSize(4096);
    return Arbitraries.frequencyOf(
        Tuple.of(2, Arbitraries.just(new byte[0])), Tuple.of(3, json), Tuple.of(2, binary));
  }
}
