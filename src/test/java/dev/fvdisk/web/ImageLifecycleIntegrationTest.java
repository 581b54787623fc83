package dev.fvdisk.web;

import static org.assertj.core.api.Assertions.assertThat;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.notNullValue;
import static org.hamcrest.Matchers.nullValue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class ImageLifecycleIntegrationTest extends ApiTestSupport {

  @Test
  void create_answers_201_with_location_etag_and_descriptor() {
    String name = uniqueName("create");
    api()
        .contentType("application/json")
        .body(Map.of("name", name, "sizeBytes", 10 * MIB, "chunkSizeBytes", 65536))
        .post(IMAGES)
        .then()
        .statusCode(201)
        .header("Location", "/api/v1/images/" + name)
        .header("ETag", notNullValue())
        .contentType("application/json")
        .body("name", equalTo(name))
        .body("sizeBytes", equalTo((int) (10 * MIB)))
        .body("chunkSizeBytes", equalTo(65536))
        .body("blockSizeBytes", equalTo(65536))
        .body("base", nullValue())
        .body("readOnly", equalTo(false))
        .body("copyOnRead", equalTo(false))
        .body("prefetch.state", equalTo("disabled"))
        .body("storage.usedBytes", equalTo(0))
        .body("storage.leakedChunks", equalTo(0))
        .body("createdAt", notNullValue());
    if (!"s3".equalsIgnoreCase(System.getenv("FVDISK_STORAGE_BACKEND"))) {
      assertThat(Files.isRegularFile(DATA_DIR.resolve(name + ".fvd"))).isTrue();
    }
  }

  @Test
  void list_is_sorted_by_name_and_holds_new_images() {
    String b = createImage("list-b", MIB);
    String a = createImage("list-a", MIB);
    List<String> names =
        api().get(IMAGES).then().statusCode(200).extract().jsonPath().getList("images.name");
    assertThat(names).contains(a, b);
    assertThat(names).isSorted();
  }

  @Test
  void get_answers_descriptor_with_etag_and_404_for_unknown_images() {
    String name = createImage("get", MIB);
    api()
        .get(IMAGES + "/" + name)
        .then()
        .statusCode(200)
        .header("ETag", notNullValue())
        .body("name", equalTo(name));
    api()
        .get(IMAGES + "/no-such-image")
        .then()
        .statusCode(404)
        .contentType("application/problem+json")
        .body("type", equalTo("https://fvdisk.dev/problems/image-not-found"))
        .body("title", equalTo("Image not found"))
        .body("image", equalTo("no-such-image"))
        .body("instance", equalTo("/api/v1/images/no-such-image"));
  }

  @Test
  void duplicate_name_is_409_image_exists() {
    String name = createImage("dup", MIB);
    api()
        .contentType("application/json")
        .body(Map.of("name", name, "sizeBytes", MIB))
        .post(IMAGES)
        .then()
        .statusCode(409)
        .body("type", equalTo("https://fvdisk.dev/problems/image-exists"));
  }

  @Test
  void patch_grows_keeping_content_and_write_past_old_end_works() {
    String name = createImage("grow", MIB, 65536L);
    byte[] head = pattern(500, 1);
    write(name, MIB - 500, head);
    api()
        .contentType("application/merge-patch+json")
        .body("{\"sizeBytes\": " + 3 * MIB + "}")
        .patch(IMAGES + "/" + name)
        .then()
        .statusCode(200)
        .body("sizeBytes", equalTo((int) (3 * MIB)));
    assertThat(read(name, MIB - 500, 500)).isEqualTo(head);
    byte[] tail = pattern(5000, 2);
    write(name, 2 * MIB + 100, tail);
    assertThat(read(name, 2 * MIB + 100, 5000)).isEqualTo(tail);
    assertThat(read(name, MIB + 500, 1000)).isEqualTo(new byte[1000]);
  }

  @Test
  void shrinking_and_unaligned_sizes_are_422() {
    String name = createImage("shrink", 2 * MIB);
    for (long size : new long[] {MIB, 2 * MIB + 100}) {
      // raw(): an unaligned size breaks the contract's multipleOf on purpose.
      raw()
          .contentType("application/json")
          .body(Map.of("sizeBytes", size))
          .patch(IMAGES + "/" + name)
          .then()
          .statusCode(422)
          .body("type", equalTo("https://fvdisk.dev/problems/invalid-value"));
    }
  }

  @Test
  void read_only_refuses_writes_and_growth_with_409_until_cleared() {
    String name = createImage("ro", MIB);
    api()
        .contentType("application/merge-patch+json")
        .body("{\"readOnly\": true}")
        .patch(IMAGES + "/" + name)
        .then()
        .statusCode(200)
        .body("readOnly", equalTo(true));
    api()
        .contentType("application/octet-stream")
        .body(new byte[512])
        .put(IMAGES + "/" + name + "/data")
        .then()
        .statusCode(409)
        .body("type", equalTo("https://fvdisk.dev/problems/image-read-only"));
    api()
        .contentType("application/json")
        .body(Map.of("op", "zero", "offsetBytes", 0, "lengthBytes", 512))
        .patch(IMAGES + "/" + name + "/data")
        .then()
        .statusCode(409);
    api()
        .contentType("application/json")
        .body(Map.of("sizeBytes", 2 * MIB))
        .patch(IMAGES + "/" + name)
        .then()
        .statusCode(409);
    api()
        .contentType("application/json")
        .body(Map.of("readOnly", false, "sizeBytes", 2 * MIB))
        .patch(IMAGES + "/" + name)
        .then()
        .statusCode(200)
        .body("readOnly", equalTo(false))
        .body("sizeBytes", equalTo((int) (2 * MIB)));
    write(name, 0, pattern(512, 3));
  }

  @Test
  void etag_changes_with_data_and_metadata_and_if_match_guards_patch_and_delete() {
    String name = createImage("etag", MIB);
    String first = etag(name);
    assertThat(etag(name)).isEqualTo(first);
    write(name, 0, pattern(10, 1));
    String second = etag(name);
    assertThat(second).isNotEqualTo(first);
    api()
        .header("If-Match", first)
        .contentType("application/json")
        .body(Map.of("readOnly", true))
        .patch(IMAGES + "/" + name)
        .then()
        .statusCode(412)
        .body("type", equalTo("https://fvdisk.dev/problems/precondition-failed"));
    String third =
        api()
            .header("If-Match", second)
            .contentType("application/json")
            .body(Map.of("readOnly", true))
            .patch(IMAGES + "/" + name)
            .then()
            .statusCode(200)
            .extract()
            .header("ETag");
    assertThat(third).isNotEqualTo(second);
    api().header("If-Match", second).delete(IMAGES + "/" + name).then().statusCode(412);
    api().header("If-Match", third).delete(IMAGES + "/" + name).then().statusCode(204);
  }

  @Test
  void delete_removes_the_file_and_answers_404_afterwards() {
    String name = createImage("delete", MIB);
    api().delete(IMAGES + "/" + name).then().statusCode(204);
    assertThat(Files.exists(DATA_DIR.resolve(name + ".fvd"))).isFalse();
    api().delete(IMAGES + "/" + name).then().statusCode(404);
    api().get(IMAGES + "/" + name).then().statusCode(404);
    List<String> names =
        api().get(IMAGES).then().statusCode(200).extract().jsonPath().getList("images.name");
    assertThat(names).doesNotContain(name);
  }

  @Test
  void check_reports_ok_and_repair_is_accepted() {
    String name = createImage("check", MIB);
    write(name, 0, pattern(100, 1));
    api()
        .post(IMAGES + "/" + name + "/check")
        .then()
        .statusCode(200)
        .body("status", equalTo("ok"))
        .body("leakedChunks", equalTo(0))
        .body("problems", equalTo(List.of()));
    api()
        .queryParam("repair", true)
        .post(IMAGES + "/" + name + "/check")
        .then()
        .statusCode(200)
        .body("reclaimedChunks", equalTo(0));
  }

  @Test
  void swagger_ui_shows_the_committed_spec_served_unchanged() throws Exception {
    raw().get("/swagger-ui/index.html").then().statusCode(200);
    raw()
        .get("/v3/api-docs/swagger-config")
        .then()
        .statusCode(200)
        .body("url", equalTo("/openapi/openapi.yaml"));
    // Tools that look for a Spring service's contract at /v3/api-docs find the committed one.
    java.util.Set<String> paths =
        raw()
            .get("/v3/api-docs")
            .then()
            .statusCode(200)
            .extract()
            .jsonPath()
            .<String, Object>getMap("paths")
            .keySet();
    assertThat(paths).contains("/api/v1/images", "/api/v1/images/{name}/data");
    byte[] served =
        raw().get("/openapi/openapi.yaml").then().statusCode(200).extract().asByteArray();
    assertThat(served).isEqualTo(Files.readAllBytes(Path.of("openapi", "openapi.yaml")));
  }

  @Test
  void unmapped_paths_are_404_problems() {
    raw()
        .get("/no/such/path")
        .then()
        .statusCode(404)
        .contentType("application/problem+json")
        .body("type", equalTo("https://fvdisk.dev/problems/not-found"))
        .body("detail", notNullValue());
    raw()
        .delete(IMAGES + "/x/check")
        .then()
        .statusCode(405)
        .contentType("application/problem+json")
        .body("type", equalTo("https://fvdisk.dev/problems/method-not-allowed"));
    // The container's error path, asked for directly, holds nothing: a 404 problem, never Boot's
    // error page (and never a 500: no error happened).
    raw()
        .get("/error")
        .then()
        .statusCode(404)
        .contentType("application/problem+json")
        .body("type", equalTo("https://fvdisk.dev/problems/not-found"));
  }
}
