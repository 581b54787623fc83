package dev.fvdisk.monitoring;

import static dev.fvdisk.monitoring.Monitoring.MIB;
import static dev.fvdisk.monitoring.Monitoring.pattern;
import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@code http.server.requests} for ranged reads of image data, which the data-read timing filter
 * records in place of Spring's observation: every read counted once, in the same series and with
 * the same tags as a read Spring observes, reads the controller answers and refused ones included.
 */
class DataReadMetricsIntegrationTest {

  private static final String DATA = "uri=\"/api/v1/images/{name}/data\"";

  private static Monitoring service;

  @BeforeAll
  static void start() {
    service = Monitoring.start(Monitoring.newDataDir("data-read-metrics"));
    service.createImage("timed", 8 * MIB, MIB);
    service.write("timed", 0, pattern(8192, 5));
  }

  @AfterAll
  static void stop() {
    service.close();
  }

  @Test
  void each_read_counts_once_in_the_series_spring_would_use() throws InterruptedException {
    // Five reads the filter answers, and one it leaves to the controller (a digest is wanted),
    // which Spring observes as before: all six in one series.
    for (int i = 0; i < 5; i++) {
      rangedGet("timed", "bytes=0-4095", 206);
    }
    service
        .http()
        .header("Range", "bytes=0-4095")
        .header("Want-Content-Digest", "sha-256=1")
        .get("/api/v1/images/timed/data")
        .then()
        .statusCode(206);
    // Two the filter passes on, each answered with a problem by the controller.
    rangedGet("absent", "bytes=0-4095", 404);
    rangedGet("timed", "bytes=99999999-", 416);
    // One Spring observes: no Range header. Its body is read to the end, so that the server is not
    // left writing to a connection the client closed.
    service.http().get("/api/v1/images/timed/data").then().statusCode(200).extract().asByteArray();

    // A request is recorded after its last byte went out, so the client may see the answer a moment
    // before the count moves: wait for the counts (the assertions below say what went wrong).
    String scrape =
        scrapeOnce(
            s ->
                !counts(s, "status=\"200\"", DATA).isEmpty()
                    && counts(s, "status=\"206\"", DATA).stream().anyMatch(line -> value(line) == 6)
                    && counts(s, "status=\"404\"", DATA).size() == 1
                    && counts(s, "status=\"416\"", DATA).size() == 1);
    List<String> partial = counts(scrape, "status=\"206\"", DATA);
    assertThat(partial).as("one series for the 206 reads").hasSize(1);
    assertThat(value(partial.get(0))).isEqualTo(6);
    assertThat(counts(scrape, "status=\"404\"", DATA)).hasSize(1);
    assertThat(value(counts(scrape, "status=\"404\"", DATA).get(0))).isEqualTo(1);
    assertThat(counts(scrape, "status=\"416\"", DATA)).hasSize(1);
    assertThat(value(counts(scrape, "status=\"416\"", DATA).get(0))).isEqualTo(1);
    // Counted once: under no other route (Spring's observation of them as well would put them
    // under UNKNOWN or NOT_FOUND).
    for (String status : new String[] {"206", "404", "416"}) {
      assertThat(counts(scrape, "status=\"" + status + "\"", "uri=\""))
          .as("series of GETs answered " + status)
          .hasSize(1);
    }

    // The same tag names and values as Spring's observation gives the whole read (200).
    String whole = counts(scrape, "status=\"200\"", DATA).get(0);
    assertThat(labelNames(partial.get(0))).isEqualTo(labelNames(whole));
    assertThat(partial.get(0))
        .contains("method=\"GET\"", "outcome=\"SUCCESS\"", "exception=\"none\"", "error=\"none\"");
    assertThat(counts(scrape, "status=\"404\"", DATA).get(0)).contains("outcome=\"CLIENT_ERROR\"");
    // The latency histogram's buckets (management.metrics.distribution.slo) apply to it.
    assertThat(scrape.lines())
        .anyMatch(
            line ->
                line.startsWith("http_server_requests_seconds_bucket{")
                    && line.contains("status=\"206\"")
                    && line.contains(DATA)
                    && line.contains("le=\"1.0E-4\""));
  }

  private static void rangedGet(String image, String range, int expectedStatus) {
    service
        .http()
        .header("Range", range)
        .get("/api/v1/images/" + image + "/data")
        .then()
        .statusCode(expectedStatus);
  }

  private static String scrapeOnce(java.util.function.Predicate<String> ready)
      throws InterruptedException {
    long deadline = System.nanoTime() + 10_000_000_000L;
    String scrape = service.prometheus();
    while (!ready.test(scrape) && System.nanoTime() < deadline) {
      Thread.sleep(50);
      scrape = service.prometheus();
    }
    return scrape;
  }

  private static List<String> counts(String scrape, String status, String uri) {
    return scrape
        .lines()
        .filter(
            line ->
                line.startsWith("http_server_requests_seconds_count{")
                    && line.contains("method=\"GET\"")
                    && line.contains(status)
                    && line.contains(uri))
        .toList();
  }

  private static double value(String line) {
    return Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
  }

  private static Set<String> labelNames(String line) {
    Set<String> names = new TreeSet<>();
    String labels = line.substring(line.indexOf('{') + 1, line.lastIndexOf('}'));
    for (String label : labels.split(",(?=[a-z_]+=\")")) {
      names.add(label.substring(0, label.indexOf('=')));
    }
    return names;
  }
}
