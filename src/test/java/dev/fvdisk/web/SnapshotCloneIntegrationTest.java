package dev.fvdisk.web;

import static io.restassured.RestAssured.given;
import static org.assertj.core.api.Assertions.assertThat;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.hasItem;
import static org.hamcrest.Matchers.nullValue;

import dev.fvdisk.FvdiskApplication;
import io.restassured.response.Response;
import io.restassured.specification.RequestSpecification;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.ConfigurableApplicationContext;

/**
 * Clones of a snapshot ({@code "base": "golden@s1"}) over HTTP: the clone reads the snapshot, not
 * the image it was taken of, which stays writable; the snapshot and the image cannot be deleted
 * while the clone reads through them; marking the image read-only and back changes nothing the
 * clone reads; a clone that finished prefetching lets the snapshot go; and a restart keeps all of
 * it.
 */
class SnapshotCloneIntegrationTest extends ApiTestSupport {

  private static final String PROBLEMS = "https://fvdisk.dev/problems/";
  private static final long CHUNK = 64 << 10;
  private static final int SIZE = (int) MIB;

  /**
   * A writable image holding {@code before} when s1 was taken, and {@code after} now; returns its
   * name.
   */
  private String goldenWithSnapshot(byte[] before, byte[] after) {
    String golden = createImage("golden", SIZE, CHUNK);
    write(golden, 0, before);
    takeSnapshot(golden, "s1");
    write(golden, 0, after);
    return golden;
  }

  /** {@code before} with a part overwritten: chunk 1 whole, and spans inside chunks 3 and 4. */
  private static byte[] overwritten(byte[] before) {
    byte[] after = before.clone();
    byte[] other = pattern(SIZE, 99);
    System.arraycopy(other, (int) CHUNK, after, (int) CHUNK, (int) CHUNK);
    System.arraycopy(other, 200_000, after, 200_000, 150_000);
    return after;
  }

  @Test
  void a_clone_of_a_snapshot_reads_the_snapshot_and_keeps_it_and_its_image() {
    byte[] s1 = pattern(SIZE, 1);
    byte[] current = overwritten(s1);
    String golden = goldenWithSnapshot(s1, current);
    String base = golden + "@s1";
    String clone = uniqueName("clone");

    api()
        .contentType("application/json")
        .body(Map.of("name", clone, "base", base, "blockSizeBytes", 4096))
        .post(IMAGES)
        .then()
        .statusCode(201)
        .header("Location", equalTo(IMAGES + "/" + clone))
        .body("name", equalTo(clone))
        .body("base", equalTo(base))
        .body("sizeBytes", equalTo(SIZE))
        .body("readOnly", equalTo(false));
    api().get(IMAGES + "/" + clone).then().statusCode(200).body("base", equalTo(base));
    api()
        .get(IMAGES + "/" + golden)
        .then()
        .statusCode(200)
        .body("readOnly", equalTo(false))
        .body("base", nullValue());
    assertThat(read(clone, 0, SIZE)).as("the clone reads s1, not golden now").isEqualTo(s1);
    assertThat(read(golden, 0, SIZE)).isEqualTo(current);

    // The clone's own writes stay its own; golden and s1 keep theirs.
    byte[] own = pattern(70_000, 3);
    write(clone, 60_000, own);
    byte[] cloneNow = s1.clone();
    System.arraycopy(own, 0, cloneNow, 60_000, own.length);
    assertThat(read(clone, 0, SIZE)).isEqualTo(cloneNow);
    assertThat(read(golden, 0, SIZE)).isEqualTo(current);
    assertThat(snapshotData(golden, "s1")).isEqualTo(s1);

    // Golden stays writable: a write into it does not reach the clone.
    byte[] later = pattern(4096, 4);
    write(golden, 60_000, later);
    System.arraycopy(later, 0, current, 60_000, later.length);
    write(golden, 500_000, later);
    System.arraycopy(later, 0, current, 500_000, later.length);
    assertThat(read(clone, 0, SIZE)).isEqualTo(cloneNow);

    api()
        .delete(IMAGES + "/" + golden + "/snapshots/s1")
        .then()
        .statusCode(409)
        .contentType("application/problem+json")
        .body("type", equalTo(PROBLEMS + "snapshot-in-use"))
        .body("status", equalTo(409))
        .body("image", equalTo(golden))
        .body("snapshot", equalTo("s1"))
        .body("clones", equalTo(List.of(clone)));
    api()
        .get(IMAGES + "/" + golden + "/snapshots")
        .then()
        .statusCode(200)
        .body("snapshots.name", hasItem("s1"));
    api()
        .delete(IMAGES + "/" + golden)
        .then()
        .statusCode(409)
        .contentType("application/problem+json")
        .body("type", equalTo(PROBLEMS + "image-in-use"))
        .body("image", equalTo(golden))
        .body("clones", equalTo(List.of(clone)));
    api().get(IMAGES + "/" + golden).then().statusCode(200);

    // Bases that are not there, or not allowed, create nothing.
    String refused = uniqueName("refused");
    api()
        .contentType("application/json")
        .body(Map.of("name", refused, "base", golden + "@nope"))
        .post(IMAGES)
        .then()
        .statusCode(404)
        .contentType("application/problem+json")
        .body("type", equalTo(PROBLEMS + "snapshot-not-found"))
        .body("image", equalTo(golden))
        .body("snapshot", equalTo("nope"));
    api()
        .contentType("application/json")
        .body(Map.of("name", refused, "base", uniqueName("missing") + "@s1"))
        .post(IMAGES)
        .then()
        .statusCode(404)
        .body("type", equalTo(PROBLEMS + "image-not-found"));
    api()
        .contentType("application/json")
        .body(Map.of("name", refused, "base", golden))
        .post(IMAGES)
        .then()
        .statusCode(409)
        .body("type", equalTo(PROBLEMS + "base-not-read-only"));
    api().get(IMAGES + "/" + refused).then().statusCode(404);

    // Marking golden read-only reopens it; the clone reads the same throughout, and the mark may
    // be cleared again although a clone reads one of golden's snapshots.
    patch(golden, Map.of("readOnly", true)).then().statusCode(200).body("readOnly", equalTo(true));
    assertThat(read(clone, 0, SIZE)).isEqualTo(cloneNow);
    api()
        .delete(IMAGES + "/" + golden + "/snapshots/s1")
        .then()
        .statusCode(409)
        .body("type", equalTo(PROBLEMS + "image-read-only"));
    patch(golden, Map.of("readOnly", false))
        .then()
        .statusCode(200)
        .body("readOnly", equalTo(false));
    assertThat(read(clone, 0, SIZE)).isEqualTo(cloneNow);
    write(golden, 0, later);
    System.arraycopy(later, 0, current, 0, later.length);
    assertThat(read(clone, 0, SIZE)).isEqualTo(cloneNow);
    assertThat(read(golden, 0, SIZE)).isEqualTo(current);
    api()
        .delete(IMAGES + "/" + golden + "/snapshots/s1")
        .then()
        .statusCode(409)
        .body("type", equalTo(PROBLEMS + "snapshot-in-use"));

    // Once the clone is gone, the snapshot and the image may go.
    api().delete(IMAGES + "/" + clone).then().statusCode(204);
    api().delete(IMAGES + "/" + golden + "/snapshots/s1").then().statusCode(204);
    api().get(IMAGES + "/" + golden + "/snapshots/s1").then().statusCode(404);
    assertThat(read(golden, 0, SIZE)).isEqualTo(current);
    api().delete(IMAGES + "/" + golden).then().statusCode(204);
  }

  @Test
  void a_clone_that_finished_prefetching_lets_its_snapshot_and_image_go() throws Exception {
    byte[] s1 = pattern(SIZE, 5);
    byte[] current = overwritten(s1);
    String golden = goldenWithSnapshot(s1, current);
    String clone = uniqueName("prefetched");
    api()
        .contentType("application/json")
        .body(
            Map.of(
                "name",
                clone,
                "base",
                golden + "@s1",
                "prefetch",
                Map.of("enabled", true, "startDelaySeconds", 0)))
        .post(IMAGES)
        .then()
        .statusCode(201)
        .body("prefetch.enabled", equalTo(true));

    long deadline = System.nanoTime() + 60_000_000_000L;
    Response described = api().get(IMAGES + "/" + clone);
    while (described.path("base") != null && System.nanoTime() < deadline) {
      Thread.sleep(20);
      described = api().get(IMAGES + "/" + clone);
    }
    described
        .then()
        .statusCode(200)
        .body("base", nullValue())
        .body("prefetch.state", equalTo("done"))
        .body("prefetch.copiedBytes", equalTo(SIZE));
    assertThat(read(clone, 0, SIZE)).isEqualTo(s1);

    api().delete(IMAGES + "/" + golden + "/snapshots/s1").then().statusCode(204);
    assertThat(read(clone, 0, SIZE)).as("after s1 went").isEqualTo(s1);
    api().delete(IMAGES + "/" + golden).then().statusCode(204);
    assertThat(read(clone, 0, SIZE)).as("after golden went").isEqualTo(s1);
    byte[] own = pattern(5000, 6);
    write(clone, 1000, own);
    byte[] cloneNow = s1.clone();
    System.arraycopy(own, 0, cloneNow, 1000, own.length);
    assertThat(read(clone, 0, SIZE)).isEqualTo(cloneNow);
    api().delete(IMAGES + "/" + clone).then().statusCode(204);
  }

  /**
   * A server of its own over its own data directory, stopped and started twice: once with golden
   * writable, once with it marked read-only. The clone's base, its bytes and the protection of
   * golden@s1 survive both.
   */
  @Test
  void a_clone_of_a_snapshot_survives_restarts() throws Exception {
    Path dataDir =
        Files.createTempDirectory(
            Files.createDirectories(Path.of("target", "it-data")), "snapshot-clone-");
    byte[] s1 = pattern(SIZE, 7);
    byte[] current = overwritten(s1);
    byte[] own = pattern(9000, 8);
    byte[] cloneNow = s1.clone();
    System.arraycopy(own, 0, cloneNow, 300_000, own.length);

    try (ConfigurableApplicationContext context = start(dataDir)) {
      Server server = new Server(port(context));
      server
          .json()
          .body(Map.of("name", "golden", "sizeBytes", SIZE, "chunkSizeBytes", CHUNK))
          .post(IMAGES)
          .then()
          .statusCode(201);
      server.write("golden", 0, s1);
      server
          .json()
          .body(Map.of("name", "s1"))
          .post(IMAGES + "/golden/snapshots")
          .then()
          .statusCode(201);
      server.write("golden", 0, current);
      server
          .json()
          .body(Map.of("name", "clone", "base", "golden@s1"))
          .post(IMAGES)
          .then()
          .statusCode(201)
          .body("base", equalTo("golden@s1"));
      server.write("clone", 300_000, own);
      assertThat(server.read("clone")).isEqualTo(cloneNow);
    }

    try (ConfigurableApplicationContext context = start(dataDir)) {
      Server server = new Server(port(context));
      server.assertCloneAndProtection(cloneNow, current);
      server
          .given()
          .contentType("application/merge-patch+json")
          .body(Map.of("readOnly", true))
          .patch(IMAGES + "/golden")
          .then()
          .statusCode(200);
    }

    try (ConfigurableApplicationContext context = start(dataDir)) {
      Server server = new Server(port(context));
      server.given().get(IMAGES + "/golden").then().statusCode(200).body("readOnly", equalTo(true));
      server.assertCloneAndProtection(cloneNow, current);
      server
          .given()
          .contentType("application/merge-patch+json")
          .body(Map.of("readOnly", false))
          .patch(IMAGES + "/golden")
          .then()
          .statusCode(200);
      server.given().delete(IMAGES + "/clone").then().statusCode(204);
      server.given().delete(IMAGES + "/golden/snapshots/s1").then().statusCode(204);
      server.given().delete(IMAGES + "/golden").then().statusCode(204);
    }
  }

  private static ConfigurableApplicationContext start(Path dataDir) {
    return new SpringApplicationBuilder(FvdiskApplication.class)
        .run("--server.port=0", "--fvdisk.data-dir=" + dataDir);
  }

  private static int port(ConfigurableApplicationContext context) {
    return Integer.parseInt(context.getEnvironment().getProperty("local.server.port"));
  }

  /** Plain REST Assured calls to a server this test started itself. */
  private record Server(int port) {

    RequestSpecification given() {
      return io.restassured.RestAssured.given().port(port);
    }

    RequestSpecification json() {
      return given().contentType("application/json");
    }

    void write(String name, long offset, byte[] data) {
      given()
          .contentType("application/octet-stream")
          .header("Content-Range", contentRange(offset, data.length))
          .body(data)
          .put(IMAGES + "/" + name + "/data")
          .then()
          .statusCode(204);
    }

    byte[] read(String name) {
      return given()
          .get(IMAGES + "/" + name + "/data")
          .then()
          .statusCode(200)
          .extract()
          .asByteArray();
    }

    void assertCloneAndProtection(byte[] cloneNow, byte[] current) {
      assertThat(
              given()
                  .get(IMAGES)
                  .then()
                  .statusCode(200)
                  .extract()
                  .jsonPath()
                  .getList("images.name"))
          .containsExactlyInAnyOrder("clone", "golden");
      given().get(IMAGES + "/clone").then().statusCode(200).body("base", equalTo("golden@s1"));
      assertThat(read("clone")).as("the clone after a restart").isEqualTo(cloneNow);
      assertThat(read("golden")).as("golden after a restart").isEqualTo(current);
      given()
          .delete(IMAGES + "/golden/snapshots/s1")
          .then()
          .statusCode(409)
          .body("type", equalTo(PROBLEMS + (isReadOnly() ? "image-read-only" : "snapshot-in-use")));
      given()
          .delete(IMAGES + "/golden")
          .then()
          .statusCode(409)
          .body("type", equalTo(PROBLEMS + "image-in-use"))
          .body("clones", equalTo(List.of("clone")));
    }

    private boolean isReadOnly() {
      return given().get(IMAGES + "/golden").then().extract().path("readOnly");
    }
  }

  private Response patch(String name, Map<String, Object> body) {
    return api().contentType("application/merge-patch+json").body(body).patch(IMAGES + "/" + name);
  }

  private byte[] snapshotData(String name, String snapshot) {
    return api()
        .get(IMAGES + "/" + name + "/snapshots/" + snapshot + "/data")
        .then()
        .statusCode(200)
        .extract()
        .asByteArray();
  }
}
