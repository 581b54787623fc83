package dev.fvdisk.objectstore;

import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.net.URI;
import java.time.Duration;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import software.amazon.awssdk.core.sync.RequestBody;

/**
 * The contract against a real S3 store: the one {@code .ci/s3-store.sh} starts, named by the {@code
 * S3_*} variables it prints. Without them the test is skipped, unless {@code FVDISK_REQUIRE_S3} is
 * set (as CI sets it), when it fails.
 */
class S3ObjectStoreIntegrationTest extends ObjectStoreContract {

  private static S3ObjectStore store;

  @BeforeAll
  static void connect() throws Exception {
    String endpoint = System.getenv("S3_ENDPOINT");
    if (endpoint == null && System.getenv("FVDISK_REQUIRE_S3") != null) {
      throw new IllegalStateException("FVDISK_REQUIRE_S3 is set but S3_ENDPOINT is not");
    }
    assumeTrue(endpoint != null, "no S3 store (S3_ENDPOINT unset)");
    store =
        S3ObjectStore.open(
            new S3ObjectStore.Settings(
                URI.create(endpoint),
                System.getenv().getOrDefault("S3_REGION", "us-east-1"),
                "fvdisk-test",
                "contract-" + UUID.randomUUID() + "/",
                System.getenv("S3_ACCESS_KEY"),
                System.getenv("S3_SECRET_KEY"),
                Duration.ofSeconds(30),
                Duration.ofSeconds(10)));
  }

  @AfterAll
  static void close() {
    if (store != null) {
      store.close();
    }
  }

  @Override
  ObjectStore store() {
    return store;
  }

  @Test
  void an_object_whose_bytes_do_not_match_its_crc_is_never_returned() throws Exception {
    store.put("damaged", bytes("good bytes"));
    // Replaced behind the store's back, keeping the old CRC in the metadata.
    store
        .rawClientForTest()
        .putObject(
            b ->
                b.bucket("fvdisk-test")
                    .key(store.keyForTest("damaged"))
                    .metadata(java.util.Map.of("crc32c", Crc32c.of(bytes("good bytes")))),
            RequestBody.fromString("bad bytes!"));
    assertThatThrownBy(() -> store.get("damaged"))
        .isInstanceOf(CorruptObjectException.class)
        .hasMessageContaining("damaged");
  }
}
