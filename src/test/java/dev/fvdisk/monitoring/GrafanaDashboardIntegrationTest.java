package dev.fvdisk.monitoring;

import static dev.fvdisk.monitoring.Monitoring.MIB;
import static dev.fvdisk.monitoring.Monitoring.pattern;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * The Grafana dashboard (docs/grafana/fvdisk.json) cannot drift from the meters: every metric name
 * its panels and template variables query, and every label their selectors match on, is in {@code
 * /actuator/prometheus} of a started service that has done what makes each meter appear (images, a
 * clone, a snapshot, HTTP requests, an NBD session and a dropped NBD connection).
 */
class GrafanaDashboardIntegrationTest {

  private static final Path DASHBOARD = Path.of("docs", "grafana", "fvdisk.json");

  /** Labels Prometheus adds when it scrapes, which the service does not print. */
  private static final Set<String> TARGET_LABELS = Set.of("instance", "job");

  private static final String OPEN_METRICS = "application/openmetrics-text;version=1.0.0";

  /** One PromQL query of the dashboard, and where the dashboard has it. */
  private record Query(String where, String expr) {}

  @Test
  void metric_names_are_extracted_from_handwritten_expressions() {
    assertThat(
            PromQl.selectors(
                "histogram_quantile(0.99, sum by (le, uri) (rate(http_server_requests_seconds_bucket"
                    + "{uri!~\"/actuator.*\", instance=~\"$instance\"}[$__rate_interval])))"))
        .containsExactly(
            new PromQl.Selector("http_server_requests_seconds_bucket", Set.of("uri", "instance")));
    assertThat(
            PromQl.metricNames(
                "sum(rate(a_total[5m])) by (method) / ignoring(x) group_left(y) sum without (z)"
                    + " (b_sum offset 1h) > bool 0.5e-3 and on(instance) c:recorded unless D"
                    + " or {__name__=\"e\", job=\"j\"} or {\"f.dotted\", \"l.dotted\"=\"v\"}"))
        .containsExactly("a_total", "b_sum", "c:recorded", "D", "e", "f.dotted");
    assertThat(
            PromQl.metricNames(
                "max(x_max @ start()) * -1.5e+2 + count_values(\"value\", y) + topk(3, z)"
                    + " - quantile(0.9, q[1h:5m]) + 0x1F + .5 + Inf - NaN"))
        .containsExactly("x_max", "y", "z", "q");
    assertThat(
            PromQl.metricNames(
                "label_replace(up{job=\"a\"}, \"dst\", \"not_a_metric\", \"src\", \"(.*)\")"
                    + " # a comment naming some_metric\n+ w{image=~\"${image:regex}\"}"))
        .containsExactly("up", "w");
    assertThat(
            PromQl.selectors(
                "label_values(fvdisk_image_used_bytes{instance=~\"$instance\"}, image)"))
        .containsExactly(new PromQl.Selector("fvdisk_image_used_bytes", Set.of("instance")));
    assertThat(PromQl.metricNames("label_values(image)")).isEmpty();
    assertThat(PromQl.metricNames("metrics(fvdisk_.*)")).isEmpty();
    assertThat(PromQl.metricNames("sum by(le)(rate(h_bucket[$__interval]))/scalar(k)"))
        .containsExactly("h_bucket", "k");
  }

  @Test
  void the_dashboard_has_the_image_and_data_source_variables() throws IOException {
    JsonNode dashboard = JsonMapper.builder().build().readTree(Files.readString(DASHBOARD));
    assertThat(dashboard.path("schemaVersion").asInt()).isGreaterThanOrEqualTo(39);
    Map<String, JsonNode> variables = new HashMap<>();
    for (JsonNode variable : dashboard.path("templating").path("list")) {
      variables.put(variable.path("name").asString(), variable);
    }
    assertThat(variables).containsKeys("datasource", "image");
    assertThat(variables.get("datasource").path("type").asString()).isEqualTo("datasource");
    assertThat(variables.get("datasource").path("query").asString()).isEqualTo("prometheus");

    JsonNode image = variables.get("image");
    assertThat(image.path("type").asString()).isEqualTo("query");
    String imageQuery = variableQuery(image);
    assertThat(imageQuery).matches("label_values\\(fvdisk_image_\\w+(\\{[^}]*})?, image\\)");

    assertThat(queries(dashboard)).hasSizeGreaterThan(30);
    // Series shown per image are those of the chosen images.
    List<JsonNode> panels = new ArrayList<>();
    collectPanels(dashboard.path("panels"), panels);
    int perImage = 0;
    for (JsonNode panel : panels) {
      for (JsonNode target : panel.path("targets")) {
        if (target.path("legendFormat").asString("").contains("{{image}}")) {
          perImage++;
          assertThat(target.path("expr").asString())
              .as("panel %s target %s", panel.path("title"), target.path("refId"))
              .contains("image=~\"$image\"");
        }
      }
    }
    assertThat(perImage).isGreaterThan(5);
    // Every panel reads the chosen data source, so the file imports into any Grafana.
    for (JsonNode panel : panels) {
      if (panel.path("type").asString().equals("row")) {
        continue;
      }
      assertThat(panel.path("datasource").path("uid").asString())
          .as(panel.path("title").asString())
          .isEqualTo("${datasource}");
      assertThat(panel.path("targets").isEmpty()).as(panel.path("title").asString()).isFalse();
    }
  }

  @Test
  void every_metric_the_dashboard_queries_is_exposed_by_a_started_service() throws Exception {
    JsonNode dashboard = JsonMapper.builder().build().readTree(Files.readString(DASHBOARD));
    List<Query> queries = queries(dashboard);

    try (Monitoring service =
        Monitoring.start(Monitoring.newDataDir("grafana"), "--fvdisk.nbd.port=0")) {
      exercise(service);
      String text = awaitScrape(service);
      String openMetrics =
          service
              .http()
              .accept(OPEN_METRICS)
              .get("/actuator/prometheus")
              .then()
              .statusCode(200)
              .extract()
              .asString();
      Map<String, Set<String>> exposed = exposed(text);
      Map<String, Set<String>> exposedOpenMetrics = exposed(openMetrics);
      System.out.println(
          "Prometheus names exposed: "
              + exposed.size()
              + " (OpenMetrics: "
              + exposedOpenMetrics.size()
              + "), series: "
              + text.lines().filter(l -> !l.startsWith("#")).count()
              + ", of them request latency buckets: "
              + text.lines()
                  .filter(l -> l.startsWith("http_server_requests_seconds_bucket"))
                  .count());

      List<String> missing = new ArrayList<>();
      Set<String> used = new TreeSet<>();
      for (Query q : queries) {
        for (PromQl.Selector s : PromQl.selectors(q.expr())) {
          used.add(s.metric());
          check(s, q, exposed, "the text format", missing);
          check(s, q, exposedOpenMetrics, "OpenMetrics", missing);
        }
      }
      System.out.println("Metric names the dashboard queries (" + used.size() + "): " + used);
      assertThat(missing)
          .as("metrics and labels the dashboard queries that /actuator/prometheus lacks")
          .isEmpty();
      assertThat(used).as("the dashboard reads fvdisk's meters").hasSizeGreaterThan(25);
    }
  }

  private static void check(
      PromQl.Selector s,
      Query q,
      Map<String, Set<String>> exposed,
      String format,
      List<String> missing) {
    Set<String> labels = exposed.get(s.metric());
    if (labels == null) {
      missing.add(
          "metric "
              + s.metric()
              + " ("
              + q.where()
              + ") is not exposed in "
              + format
              + "; nearest exposed: "
              + nearest(s.metric(), exposed.keySet())
              + "\n    expr: "
              + q.expr());
      return;
    }
    for (String label : s.labels()) {
      if (!TARGET_LABELS.contains(label) && !labels.contains(label)) {
        missing.add(
            "label "
                + label
                + " of "
                + s.metric()
                + " ("
                + q.where()
                + ") is not exposed in "
                + format
                + "; it has "
                + labels
                + "\n    expr: "
                + q.expr());
      }
    }
  }

  /**
   * Makes every meter the dashboard reads appear: images and a clone (its prefetch gauges), data
   * and a snapshot, HTTP requests including a 404, an NBD session with a write, a read and a flush,
   * and an NBD connection dropped in the handshake.
   */
  private static void exercise(Monitoring service) throws IOException {
    service.createImage("disk", 4 * MIB, 65536);
    service.write("disk", 0, pattern(8192, 1));
    service
        .http()
        .contentType("application/json")
        .body(Map.of("name", "before"))
        .post("/api/v1/images/disk/snapshots")
        .then()
        .statusCode(201);
    // Overwrite a chunk the snapshot keeps, so the snapshot holds bytes of its own.
    service.write("disk", 0, pattern(8192, 2));
    service
        .http()
        .contentType("application/json")
        .body(Map.of("name", "clone", "base", "disk@before"))
        .post("/api/v1/images")
        .then()
        .statusCode(201);
    service
        .http()
        .header("Range", "bytes=0-4095")
        .get("/api/v1/images/clone/data")
        .then()
        .statusCode(206);
    service.http().get("/api/v1/images").then().statusCode(200);
    service.http().get("/api/v1/images/no-such-image").then().statusCode(404);

    int port = service.nbdPort();
    assertThat(port).as("the NBD listener runs").isPositive();
    nbdSession(port, "disk");
    // Unknown client flags: the server drops the connection in the handshake.
    try (Socket socket = new Socket("127.0.0.1", port)) {
      DataInputStream in = new DataInputStream(socket.getInputStream());
      DataOutputStream out = new DataOutputStream(socket.getOutputStream());
      in.readFully(new byte[18]);
      out.writeInt(0x80);
      out.flush();
      assertThat(in.read()).as("the server closes the connection").isEqualTo(-1);
    }
  }

  // The few NBD numbers a plain session needs (the protocol's doc/proto.md).
  private static final long NBDMAGIC = 0x4e42444d41474943L;
  private static final long IHAVEOPT = 0x49484156454f5054L;
  private static final int OPT_EXPORT_NAME = 1;
  private static final int REQUEST_MAGIC = 0x25609513;
  private static final int SIMPLE_REPLY_MAGIC = 0x67446698;
  private static final int CMD_READ = 0;
  private static final int CMD_WRITE = 1;
  private static final int CMD_DISC = 2;
  private static final int CMD_FLUSH = 3;

  /** Opens {@code export} with EXPORT_NAME, writes, reads back and flushes 4 KiB, and leaves. */
  private static void nbdSession(int port, String export) throws IOException {
    try (Socket socket = new Socket("127.0.0.1", port)) {
      DataInputStream in = new DataInputStream(socket.getInputStream());
      DataOutputStream out = new DataOutputStream(socket.getOutputStream());
      assertThat(in.readLong()).isEqualTo(NBDMAGIC);
      assertThat(in.readLong()).isEqualTo(IHAVEOPT);
      in.readUnsignedShort();
      out.writeInt(1 | 2); // fixed newstyle, no zeroes
      byte[] name = export.getBytes(StandardCharsets.UTF_8);
      out.writeLong(IHAVEOPT);
      out.writeInt(OPT_EXPORT_NAME);
      out.writeInt(name.length);
      out.write(name);
      out.flush();
      assertThat(in.readLong()).as("export size").isEqualTo(4 * MIB);
      in.readUnsignedShort();

      byte[] data = pattern(4096, 3);
      request(out, CMD_WRITE, 1, 65536, data.length);
      out.write(data);
      out.flush();
      reply(in, 1);
      request(out, CMD_READ, 2, 65536, data.length);
      out.flush();
      reply(in, 2);
      byte[] read = new byte[data.length];
      in.readFully(read);
      assertThat(read).isEqualTo(data);
      request(out, CMD_FLUSH, 3, 0, 0);
      out.flush();
      reply(in, 3);
      request(out, CMD_DISC, 4, 0, 0);
      out.flush();
    }
  }

  private static void request(DataOutputStream out, int type, long handle, long offset, int length)
      throws IOException {
    out.writeInt(REQUEST_MAGIC);
    out.writeShort(0);
    out.writeShort(type);
    out.writeLong(handle);
    out.writeLong(offset);
    out.writeInt(length);
  }

  private static void reply(DataInputStream in, long handle) throws IOException {
    assertThat(in.readInt()).isEqualTo(SIMPLE_REPLY_MAGIC);
    assertThat(in.readInt()).as("error").isZero();
    assertThat(in.readLong()).isEqualTo(handle);
  }

  /**
   * A scrape once the NBD meters recorded on the connection threads have caught up with what the
   * client saw.
   */
  private static String awaitScrape(Monitoring service) throws InterruptedException {
    long deadline = System.nanoTime() + 10_000_000_000L;
    while (true) {
      String scrape = service.prometheus();
      boolean dropped = scrape.contains("fvdisk_nbd_connections_dropped_total{");
      boolean flushed = scrape.contains("command=\"flush\"");
      if ((dropped && flushed) || System.nanoTime() > deadline) {
        return scrape;
      }
      Thread.sleep(50);
    }
  }

  // A sample line: a name, then labels in braces (values quoted with escapes), then the value.
  private static final Pattern SAMPLE = Pattern.compile("^([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{)?");
  private static final Pattern LABEL =
      Pattern.compile("\\G\\s*,?\\s*([a-zA-Z_][a-zA-Z0-9_]*)=\"(?:[^\"\\\\]|\\\\.)*\"");

  /**
   * The names of the series a scrape holds (as Prometheus stores them: counters with {@code
   * _total}, histograms as {@code _bucket}, {@code _count} and {@code _sum}), each with the labels
   * any of its series carries.
   */
  static Map<String, Set<String>> exposed(String scrape) {
    Map<String, Set<String>> names = new HashMap<>();
    scrape
        .lines()
        .filter(line -> !line.isBlank() && !line.startsWith("#"))
        .forEach(
            line -> {
              Matcher m = SAMPLE.matcher(line);
              if (!m.find()) {
                throw new AssertionError("not a sample line: " + line);
              }
              Set<String> labels = names.computeIfAbsent(m.group(1), k -> new HashSet<>());
              if (m.group(2) != null) {
                Matcher label = LABEL.matcher(line);
                label.region(m.end(), line.length());
                while (label.find()) {
                  labels.add(label.group(1));
                }
              }
            });
    return names;
  }

  /** Every PromQL query of the dashboard: panel targets, and the template variables' queries. */
  private static List<Query> queries(JsonNode dashboard) {
    List<Query> queries = new ArrayList<>();
    List<JsonNode> panels = new ArrayList<>();
    collectPanels(dashboard.path("panels"), panels);
    for (JsonNode panel : panels) {
      for (JsonNode target : panel.path("targets")) {
        String expr = target.path("expr").asString("");
        assertThat(expr)
            .as("target %s of panel %s", target.path("refId"), panel.path("title"))
            .isNotBlank();
        queries.add(
            new Query(
                "panel \""
                    + panel.path("title").asString()
                    + "\" target "
                    + target.path("refId").asString(),
                expr));
      }
    }
    for (JsonNode variable : dashboard.path("templating").path("list")) {
      if (variable.path("type").asString().equals("query")) {
        String where = "variable " + variable.path("name").asString();
        queries.add(new Query(where, variableQuery(variable)));
        if (variable.has("definition")) {
          queries.add(new Query(where + " definition", variable.path("definition").asString()));
        }
      }
    }
    for (JsonNode annotation : dashboard.path("annotations").path("list")) {
      if (annotation.has("expr")) {
        queries.add(
            new Query(
                "annotation " + annotation.path("name").asString(),
                annotation.path("expr").asString()));
      }
    }
    return queries;
  }

  /** Panels, with those inside rows (collapsed rows keep theirs in {@code panels}). */
  private static void collectPanels(JsonNode list, List<JsonNode> into) {
    for (JsonNode panel : list) {
      into.add(panel);
      collectPanels(panel.path("panels"), into);
    }
  }

  /** A query variable's query: a string in older dashboards, an object in newer ones. */
  private static String variableQuery(JsonNode variable) {
    JsonNode query = variable.path("query");
    return query.isObject() ? query.path("query").asString() : query.asString();
  }

  /** The three exposed names closest to {@code name}, to point at a renamed meter. */
  private static List<String> nearest(String name, Set<String> names) {
    return names.stream()
        .sorted(Comparator.comparingInt((String n) -> distance(name, n)).thenComparing(n -> n))
        .limit(3)
        .toList();
  }

  private static int distance(String a, String b) {
    int[] row = new int[b.length() + 1];
    for (int j = 0; j <= b.length(); j++) {
      row[j] = j;
    }
    for (int i = 1; i <= a.length(); i++) {
      int diagonal = row[0];
      row[0] = i;
      for (int j = 1; j <= b.length(); j++) {
        int above = row[j];
        row[j] =
            Math.min(
                Math.min(row[j] + 1, row[j - 1] + 1),
                diagonal + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1));
        diagonal = above;
      }
    }
    return row[b.length()];
  }
}
