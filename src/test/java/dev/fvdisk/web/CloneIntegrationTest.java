package dev.fvdisk.web;

import static org.assertj.core.api.Assertions.assertThat;
import static org.hamcrest.Matchers.contains;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.nullValue;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Clones of read-only bases over HTTP: creation rules, reads, writes, the map and prefetching. */
class CloneIntegrationTest extends ApiTestSupport {

  private static final int BLOCK = 4096;

  /** A 1 MiB image holding {@code content} at offset 0, marked read-only. */
  private String readOnlyBase(byte[] content) {
    String base = createImage("base", MIB);
    write(base, 0, content);
    patch(base, Map.of("readOnly", true)).then().statusCode(200).body("readOnly", equalTo(true));
    return base;
  }

  private io.restassured.response.Response patch(String name, Map<String, Object> body) {
    return api().contentType("application/merge-patch+json").body(body).patch(IMAGES + "/" + name);
  }

  private io.restassured.response.Response create(Map<String, Object> body) {
    return api().contentType("application/json").body(body).post(IMAGES);
  }

  @Test
  void a_clone_reads_its_base_keeps_its_own_writes_and_protects_the_base() {
    byte[] content = pattern(300_000, 3);
    String base = readOnlyBase(content);
    String clone = uniqueName("clone");
    create(Map.of("name", clone, "base", base, "blockSizeBytes", BLOCK))
        .then()
        .statusCode(201)
        .body("base", equalTo(base))
        .body("sizeBytes", equalTo((int) MIB))
        .body("blockSizeBytes", equalTo(BLOCK))
        .body("readOnly", equalTo(false))
        .body("prefetch.state", equalTo("disabled"))
        .body("prefetch.totalBytes", equalTo((int) MIB));
    assertThat(read(clone, 0, content.length)).isEqualTo(content);

    byte[] written = pattern(5000, 9);
    write(clone, 1000, written);
    byte[] expected = content.clone();
    System.arraycopy(written, 0, expected, 1000, written.length);
    assertThat(read(clone, 0, content.length)).isEqualTo(expected);
    assertThat(read(base, 0, content.length)).isEqualTo(content);

    // Blocks 0 and 1 hold the write now; the rest of the base's range still comes from the base.
    api()
        .get(IMAGES + "/" + clone + "/map")
        .then()
        .statusCode(200)
        .body("extents.state", contains("data", "base"))
        .body("extents[0].lengthBytes", equalTo(2 * BLOCK));

    raw()
        .delete(IMAGES + "/" + base)
        .then()
        .statusCode(409)
        .body("type", equalTo("https://fvdisk.dev/problems/image-in-use"))
        .body("clones", equalTo(List.of(clone)));
    patch(base, Map.of("readOnly", false))
        .then()
        .statusCode(409)
        .body("type", equalTo("https://fvdisk.dev/problems/image-in-use"));
    raw()
        .contentType("application/octet-stream")
        .body(new byte[512])
        .put(IMAGES + "/" + base + "/data")
        .then()
        .statusCode(409)
        .body("type", equalTo("https://fvdisk.dev/problems/image-read-only"));

    api().delete(IMAGES + "/" + clone).then().statusCode(204);
    patch(base, Map.of("readOnly", false)).then().statusCode(200).body("readOnly", equalTo(false));
    write(base, 0, new byte[] {1});
    api().delete(IMAGES + "/" + base).then().statusCode(204);
  }

  @Test
  void clone_requests_that_break_the_rules_create_nothing() {
    String writable = createImage("writable", MIB);
    String base = readOnlyBase(pattern(1000, 1));
    String[] names = new String[6];
    for (int i = 0; i < names.length; i++) {
      names[i] = uniqueName("refused");
    }
    create(Map.of("name", names[0], "base", writable))
        .then()
        .statusCode(409)
        .body("type", equalTo("https://fvdisk.dev/problems/base-not-read-only"));
    create(Map.of("name", names[1], "base", "no-such-base"))
        .then()
        .statusCode(404)
        .body("type", equalTo("https://fvdisk.dev/problems/image-not-found"));
    create(Map.of("name", names[2], "base", base, "sizeBytes", MIB / 2)).then().statusCode(422);
    create(Map.of("name", names[3], "sizeBytes", MIB, "copyOnRead", true)).then().statusCode(422);
    create(Map.of("name", names[4], "base", base, "blockSizeBytes", 3000)).then().statusCode(422);
    create(Map.of("name", names[5], "sizeBytes", MIB, "prefetch", Map.of("enabled", true)))
        .then()
        .statusCode(422);
    patch(writable, Map.of("copyOnRead", true)).then().statusCode(422);
    for (String name : names) {
      api().get(IMAGES + "/" + name).then().statusCode(404);
    }
    api()
        .get(IMAGES + "/" + writable)
        .then()
        .statusCode(200)
        .body("copyOnRead", equalTo(false))
        .body("base", nullValue());
  }

  @Test
  void a_clone_of_a_clone_reads_through_the_chain_and_may_be_larger() {
    byte[] content = pattern(200_000, 5);
    String base = readOnlyBase(content);
    String middle = uniqueName("middle");
    create(Map.of("name", middle, "base", base)).then().statusCode(201);
    byte[] written = pattern(700, 6);
    write(middle, 50_000, written);
    patch(middle, Map.of("readOnly", true)).then().statusCode(200);
    String top = uniqueName("top");
    create(Map.of("name", top, "base", middle, "sizeBytes", 2 * MIB))
        .then()
        .statusCode(201)
        .body("sizeBytes", equalTo((int) (2 * MIB)));
    byte[] expected = Arrays.copyOf(content, (int) (2 * MIB));
    System.arraycopy(written, 0, expected, 50_000, written.length);
    assertThat(read(top, 0, 2 * MIB)).isEqualTo(expected);
  }

  @Test
  void prefetch_makes_the_clone_stand_alone_and_then_its_base_may_go() throws Exception {
    byte[] content = pattern(400_000, 7);
    String base = readOnlyBase(content);
    String clone = uniqueName("pf");
    create(Map.of("name", clone, "base", base, "copyOnRead", true))
        .then()
        .statusCode(201)
        .body("copyOnRead", equalTo(true));
    patch(clone, Map.of("prefetch", Map.of("enabled", true, "startDelaySeconds", 0)))
        .then()
        .statusCode(200)
        .body("prefetch.enabled", equalTo(true));
    long deadline = System.nanoTime() + 60_000_000_000L;
    String state = "";
    while (!state.equals("done") && System.nanoTime() < deadline) {
      Thread.sleep(20);
      state = api().get(IMAGES + "/" + clone).then().extract().path("prefetch.state");
    }
    api()
        .get(IMAGES + "/" + clone)
        .then()
        .statusCode(200)
        .body("prefetch.state", equalTo("done"))
        .body("prefetch.copiedBytes", equalTo((int) MIB))
        .body("base", nullValue());
    api().delete(IMAGES + "/" + base).then().statusCode(204);
    assertThat(read(clone, 0, content.length)).isEqualTo(content);
    api()
        .get(IMAGES + "/" + clone + "/map")
        .then()
        .statusCode(200)
        .body("extents.state", contains("data"));
  }
}
