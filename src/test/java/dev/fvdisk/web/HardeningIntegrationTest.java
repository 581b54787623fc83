package dev.fvdisk.web;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.fvdisk.testing.RawHttp;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.boot.test.system.CapturedOutput;
import org.springframework.boot.test.system.OutputCaptureExtension;

/**
 * The edges that trying fvdisk as a new user and fuzzing its API found answered wrongly: malformed
 * query strings, chunked JSON bodies, curl's form-labelled uploads, bodies cut short, a delete
 * during a long read, unknown methods, and requests Tomcat refuses on its own. Each is answered as
 * a problem, changes nothing it should not, and logs no stack trace.
 */
@ExtendWith(OutputCaptureExtension.class)
class HardeningIntegrationTest extends ApiTestSupport {

  private static final String PROBLEM = "application/problem+json";

  private RawHttp.Response send(
      String method, String target, Map<String, String> headers, byte[] body) throws IOException {
    return RawHttp.exchange(port, method, target, headers, body);
  }

  private RawHttp.Response send(String method, String target) throws IOException {
    return send(method, target, Map.of(), new byte[0]);
  }

  private static void assertProblem(RawHttp.Response answer, int status) {
    assertThat(answer.status()).as(answer.toString()).isEqualTo(status);
    assertThat(answer.header("Content-Type")).as(answer.toString()).startsWith(PROBLEM);
    assertThat(answer.text()).contains("\"status\":" + status);
  }

  @Test
  void malformed_query_strings_are_400_problems_everywhere_and_log_no_error(CapturedOutput output)
      throws IOException {
    String name = createImage("query", MIB);
    write(name, 0, pattern(4096, 1));
    String before = checksum(name);
    String image = IMAGES + "/" + name;
    for (String query : new String[] {"?=x", "?%zz=1", "?a=%", "?a=%FF"}) {
      assertProblem(send("GET", image + "/map" + query), 400);
      assertProblem(send("GET", image + "/sectors/0" + query), 400);
      assertProblem(send("POST", image + "/check" + query), 400);
      assertProblem(send("GET", "/actuator/health" + query), 400);
      assertProblem(send("GET", "/actuator/storage" + query), 400);
      assertProblem(
          send(
              "PUT",
              image + "/data" + query,
              Map.of("Content-Type", "application/octet-stream", "Content-Length", "4"),
              new byte[] {9, 9, 9, 9}),
          400);
      assertProblem(
          send(
              "PATCH",
              image + "/data" + query,
              Map.of("Content-Type", "application/json", "Content-Length", "15"),
              "{\"op\":\"flush\"}\n".getBytes(StandardCharsets.UTF_8)),
          400);
    }
    // A form POST's parameters are parsed only when a controller asks; still a 400.
    assertProblem(
        send(
            "POST",
            image + "/check?a=%",
            Map.of("Content-Type", "application/x-www-form-urlencoded", "Content-Length", "3"),
            "x=1".getBytes(StandardCharsets.UTF_8)),
        400);
    assertThat(checksum(name)).isEqualTo(before);
    assertThat(output.getOut()).doesNotContain(" ERROR ");
  }

  @Test
  void a_chunked_json_body_over_the_limit_is_413_and_creates_nothing() throws IOException {
    String name = uniqueName("chunked");
    byte[] body =
        ("{\"name\":\"" + name + "\",\"sizeBytes\":1048576" + " ".repeat(200_000) + "}")
            .getBytes(StandardCharsets.UTF_8);
    RawHttp.Response answer =
        send(
            "POST",
            IMAGES,
            Map.of("Content-Type", "application/json", "Transfer-Encoding", "chunked"),
            RawHttp.chunked(body, 8192));
    assertProblem(answer, 413);
    assertThat(answer.text()).contains("without Content-Length");
    api().get(IMAGES + "/" + name).then().statusCode(404);
    // A small chunked body is read as usual.
    RawHttp.Response small =
        send(
            "POST",
            IMAGES,
            Map.of("Content-Type", "application/json", "Transfer-Encoding", "chunked"),
            RawHttp.chunked(
                ("{\"name\":\"" + name + "\",\"sizeBytes\":1048576}")
                    .getBytes(StandardCharsets.UTF_8),
                16));
    assertThat(small.status()).as(small.toString()).isEqualTo(201);
  }

  @Test
  void an_upload_labelled_as_a_form_like_curl_data_binary_is_written_as_raw_bytes()
      throws IOException {
    String name = createImage("curl", MIB);
    // Bytes a form parser would mangle: '+', '%', '&' and '='.
    byte[] data = "a+b%20c&d=e\u0000\u00ff".repeat(100).getBytes(StandardCharsets.ISO_8859_1);
    RawHttp.Response answer =
        send(
            "PUT",
            IMAGES + "/" + name + "/data",
            Map.of(
                "Content-Type",
                "application/x-www-form-urlencoded",
                "Content-Length",
                String.valueOf(data.length)),
            data);
    assertThat(answer.status()).as(answer.toString()).isEqualTo(204);
    assertThat(read(name, 0, data.length)).isEqualTo(data);
    byte[] sector = pattern(512, 4);
    RawHttp.Response sectors =
        send(
            "PUT",
            IMAGES + "/" + name + "/sectors/3",
            Map.of("Content-Type", "application/x-www-form-urlencoded", "Content-Length", "512"),
            sector);
    assertThat(sectors.status()).as(sectors.toString()).isEqualTo(204);
    assertThat(read(name, 3 * 512, 512)).isEqualTo(sector);
    assertProblem(
        send(
            "PUT",
            IMAGES + "/" + name + "/data",
            Map.of("Content-Type", "text/plain", "Content-Length", "1"),
            new byte[] {1}),
        415);
  }

  /** The first upload a new user types, with the real curl: both spellings work. */
  @Test
  void real_curl_uploads_with_data_binary_and_upload_file(@TempDir Path dir) throws Exception {
    assumeTrue(onPath("curl"), "curl is not installed");
    String name = createImage("real-curl", MIB);
    byte[] data = pattern(100_000, 6);
    Path file = Files.write(dir.resolve("disk.raw"), data);
    String url = "http://127.0.0.1:" + port + IMAGES + "/" + name + "/data";
    assertThat(curl("-X", "PUT", "--data-binary", "@" + file, url)).isEqualTo("204");
    assertThat(read(name, 0, data.length)).isEqualTo(data);
    byte[] other = pattern(100_000, 7);
    Files.write(file, other);
    assertThat(curl("-T", file.toString(), url)).isEqualTo("204");
    assertThat(read(name, 0, other.length)).isEqualTo(other);
  }

  private static String curl(String... arguments) throws Exception {
    List<String> command =
        new ArrayList<>(List.of("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}"));
    command.addAll(List.of(arguments));
    Process curl = new ProcessBuilder(command).redirectErrorStream(true).start();
    String out = new String(curl.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(curl.waitFor()).as("curl: %s", out).isZero();
    return out.trim();
  }

  private static boolean onPath(String program) {
    return Stream.of(System.getenv("PATH").split(java.io.File.pathSeparator))
        .anyMatch(d -> Files.isExecutable(Path.of(d, program)));
  }

  @Test
  void a_body_cut_short_says_how_much_arrived_and_logs_one_line(CapturedOutput output)
      throws Exception {
    String name = createImage("cut", 4 * MIB);
    long logged = lines(output);
    RawHttp.Response answer;
    try (Socket socket = RawHttp.connect(port)) {
      OutputStream out = socket.getOutputStream();
      out.write(
          ("PUT "
                  + IMAGES
                  + "/"
                  + name
                  + "/data HTTP/1.1\r\nHost: localhost\r\n"
                  + "Content-Type: application/octet-stream\r\nContent-Length: 1048576\r\n\r\n")
              .getBytes(StandardCharsets.ISO_8859_1));
      out.write(new byte[300_000]);
      out.flush();
      socket.shutdownOutput();
      answer = RawHttp.read(socket.getInputStream(), false);
    }
    assertProblem(answer, 400);
    assertThat(answer.text()).contains("the body ended after 300000 of the 1048576 bytes");
    String log = output.getOut().substring(offsetOfLine(output, logged));
    assertThat(log.lines().filter(l -> l.contains("/api/v1/images/" + name + "/data")).count())
        .as("log lines about the request:\n%s", log)
        .isEqualTo(1);
    assertThat(log).doesNotContain(" ERROR ").doesNotContain("\tat ");
    api().post(IMAGES + "/" + name + "/check").then().statusCode(200);
  }

  /**
   * A chunked body gives no length before it arrives, so a body longer or shorter than its {@code
   * Content-Range} is only seen while it is read. Within one buffer nothing is written: the refusal
   * changes nothing, with or without {@code If-Match}. Found by the fuzz test.
   */
  @Test
  void a_chunked_body_that_does_not_fit_its_range_is_refused_and_writes_nothing() throws Exception {
    String name = createImage("chunked-misfit", MIB);
    byte[] before = pattern(8192, 4);
    write(name, 0, before);
    String etag = api().head(IMAGES + "/" + name + "/data").then().extract().header("ETag");
    Object[][] cases = {
      // range, body length, If-Match, what the detail says
      {"bytes 0-3/*", 50, null, "longer than the 4 bytes announced; nothing was written"},
      {"bytes 0-3/*", 50, "*", "longer than the 4 bytes announced; nothing was written"},
      {"bytes 100-4195/*", 4097, etag, "longer than the 4096 bytes announced"},
      {"bytes 0-8191/*", 3000, null, "the body ended after 3000 of the 8192 bytes"},
      {"bytes 0-8191/*", 3000, "*", "the first 0 bytes were written"},
    };
    for (Object[] c : cases) {
      Map<String, String> headers = new LinkedHashMap<>();
      headers.put("Content-Type", "application/octet-stream");
      headers.put("Content-Range", (String) c[0]);
      if (c[2] != null) {
        headers.put("If-Match", (String) c[2]);
      }
      headers.put("Transfer-Encoding", "chunked");
      byte[] body = RawHttp.chunked(pattern((Integer) c[1], 9), 1000);
      RawHttp.Response answer =
          RawHttp.exchange(port, "PUT", IMAGES + "/" + name + "/data", headers, body);
      assertProblem(answer, 400);
      assertThat(answer.text()).as(c[0] + " with " + c[1] + " bytes").contains((String) c[3]);
      assertThat(read(name, 0, 8192)).as(c[0] + " with " + c[1] + " bytes").isEqualTo(before);
    }
  }

  @Test
  void a_delete_during_a_whole_disk_read_closes_the_connection_at_once() throws Exception {
    String name = createImage("long-read", 256 * MIB);
    try (Socket socket = RawHttp.connect(port)) {
      // A receive buffer far smaller than the disk, so the answer stays in progress.
      socket.setReceiveBufferSize(64 << 10);
      socket
          .getOutputStream()
          .write(
              ("GET " + IMAGES + "/" + name + "/data HTTP/1.1\r\nHost: localhost\r\n\r\n")
                  .getBytes(StandardCharsets.ISO_8859_1));
      InputStream in = socket.getInputStream();
      byte[] buffer = new byte[64 << 10];
      long received = in.read(buffer);
      assertThat(new String(buffer, 0, 12, StandardCharsets.ISO_8859_1)).isEqualTo("HTTP/1.1 200");
      api().delete(IMAGES + "/" + name).then().statusCode(204);
      // The answer stopped, so the connection must end well short of the disk's 256 MiB, and by a
      // close. Left open, it would end only with the keep-alive timeout (30 s): the read timeout
      // below that turns such a wait into a failure, with a wide margin over a prompt close.
      socket.setSoTimeout(20_000);
      for (int n; (n = in.read(buffer)) > 0; ) {
        received += n;
      }
      assertThat(received).isLessThan(256 * MIB);
    }
  }

  @Test
  void unknown_methods_and_trace_are_405_with_the_paths_allow_header() throws IOException {
    String name = createImage("methods", MIB);
    for (String method : new String[] {"QUERY", "FOO", "TRACE"}) {
      RawHttp.Response data =
          send(
              method,
              IMAGES + "/" + name + "/data",
              Map.of("Authorization", "Basic eDp5"),
              new byte[0]);
      assertProblem(data, 405);
      assertThat(data.header("Allow")).contains("GET", "PUT", "PATCH").doesNotContain("POST");
      // TRACE is never echoed back (credentials included).
      assertThat(data.text()).doesNotContain("Authorization").doesNotContain("eDp5");
      RawHttp.Response list = send(method, IMAGES);
      assertProblem(list, 405);
      assertThat(list.header("Allow")).contains("GET", "POST").doesNotContain("PUT");
    }
  }

  @Test
  void requests_tomcat_refuses_on_its_own_are_problems_too() throws IOException {
    String name = createImage("tomcat", MIB);
    for (String target : new String[] {IMAGES + "/a%2Fb", IMAGES + "/a%FF", IMAGES + "/%"}) {
      assertProblem(send("GET", target), 400);
    }
    String ranges =
        IntStream.range(0, 10_000)
            .mapToObj(i -> (2 * i) + "-" + (2 * i))
            .collect(Collectors.joining(",", "bytes=", ""));
    Map<String, String> headers = new LinkedHashMap<>();
    headers.put("Range", ranges);
    RawHttp.Response answer = send("GET", IMAGES + "/" + name + "/data", headers, new byte[0]);
    assertThat(answer.status()).isBetween(400, 431);
    assertThat(answer.header("Content-Type")).startsWith(PROBLEM);
  }

  private static long lines(CapturedOutput output) {
    return output.getOut().lines().count();
  }

  private static int offsetOfLine(CapturedOutput output, long line) {
    String all = output.getOut();
    int at = 0;
    for (long i = 0; i < line && at >= 0; i++) {
      at = all.indexOf('\n', at) + 1;
    }
    return Math.max(0, at);
  }
}
