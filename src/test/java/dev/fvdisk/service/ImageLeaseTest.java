package dev.fvdisk.service;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.fvdisk.objectstore.BucketStorage;
import dev.fvdisk.objectstore.InMemoryObjectStore;
import dev.fvdisk.objectstore.ObjectStore;
import java.io.StringReader;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two service instances on one bucket, each image served by the instance that holds its lease. The
 * instances share a hand-driven clock: a paused instance is one whose renewals are not run while
 * the clock moves past its lease.
 */
class ImageLeaseTest {

  private static final ServiceLimits LIMITS =
      new ServiceLimits(1L << 40, null, 65536, 0, 4096, 1000, 16);
  private static final Duration LEASE = Duration.ofSeconds(10);

  private final ObjectStore store = new InMemoryObjectStore();
  private final AtomicLong clock = new AtomicLong(1_000_000);
  private final ExecutorService transfers = Executors.newFixedThreadPool(4);
  private final List<ImageService> services = new ArrayList<>();
  private final Map<ImageService, BucketImageDirectory> directories = new IdentityHashMap<>();

  @TempDir Path dir;

  @AfterEach
  void closeAll() {
    services.forEach(ImageService::close);
    transfers.shutdownNow();
  }

  private ImageService instance(String node) throws Exception {
    Path root = Files.createDirectories(dir.resolve(node + "-" + services.size())).toRealPath();
    BucketImageDirectory directory =
        new BucketImageDirectory(
            root,
            store,
            transfers,
            BucketStorage.Settings.DEFAULTS,
            node,
            "http://" + node + ":8080",
            LEASE,
            clock::get);
    ImageService service = new ImageService(directory, LIMITS);
    service.openAll();
    services.add(service);
    directories.put(service, directory);
    return service;
  }

  /** An instance's lease figures: held, taken over, lost. */
  private List<Long> leases(ImageService service) {
    BucketImageDirectory d = directories.get(service);
    return List.of((long) d.leasesHeld(), d.leasesTakenOver(), d.leasesLost());
  }

  private void sleepThroughLease() {
    clock.addAndGet(LEASE.toMillis() + 1);
  }

  @Test
  void a_paused_owner_is_taken_over_fenced_and_then_sends_clients_to_the_new_one()
      throws Exception {
    ImageService a = instance("a");
    ImageService b = instance("b");
    a.create(new CreateImageCommand("vm", 4L << 20, null, 65536L, null, null, null, null));
    byte[] acknowledged = filled(4096, 1);
    byte[] unflushed = filled(4096, 2);
    byte[] fromB = filled(4096, 3);
    write(a, "vm", 0, acknowledged, Durability.DURABLE);
    write(a, "vm", 4096, unflushed, Durability.BUFFERED);

    assertThatThrownBy(() -> read(b, "vm", 0, 512))
        .isInstanceOfSatisfying(
            ImageElsewhereException.class,
            e -> assertThat(e.ownerUrl()).isEqualTo("http://a:8080"));
    assertThat(b.list()).extracting(ImageDescriptor::name).containsExactly("vm");
    assertThatThrownBy(() -> b.delete("vm", null)).isInstanceOf(ImageElsewhereException.class);
    assertThat(leases(a)).as("A: held, taken over, lost").containsExactly(1L, 0L, 0L);
    assertThat(leases(b)).as("B: held, taken over, lost").containsExactly(0L, 0L, 0L);

    // A stops (no renewals) past its lease; B takes the image over and writes.
    sleepThroughLease();
    assertThat(leases(a)).as("A's lease ran out by its clock").containsExactly(0L, 0L, 0L);
    write(b, "vm", 8192, fromB, Durability.DURABLE);
    assertThat(leases(b)).as("B took A's lease").containsExactly(1L, 1L, 0L);

    // A wakes: its next flush fails, and after it A sends clients to B.
    assertThatThrownBy(() -> a.flush("vm", null))
        .isInstanceOf(ImageUnavailableException.class)
        .hasMessageContaining("taken over");
    assertThatThrownBy(() -> write(a, "vm", 12288, filled(4096, 4), Durability.DURABLE))
        .isInstanceOfSatisfying(
            ImageElsewhereException.class,
            e -> assertThat(e.ownerUrl()).isEqualTo("http://b:8080"));
    assertThat(leases(a)).as("A gave the image up once").containsExactly(0L, 0L, 1L);

    assertThat(read(b, "vm", 0, 4096)).isEqualTo(acknowledged);
    assertThat(read(b, "vm", 4096, 4096))
        .as("A's write that no flush covered never becomes visible")
        .isEqualTo(new byte[4096]);
    assertThat(read(b, "vm", 8192, 4096)).isEqualTo(fromB);
    assertThat(read(b, "vm", 12288, 4096)).isEqualTo(new byte[4096]);
  }

  /**
   * Another instance's URL reaches this one's answers as a {@code Location} field, from an object
   * anyone with the bucket's keys can write: one with a line break in it is refused as unreadable,
   * never passed on, and not quoted in the error either.
   */
  @Test
  void a_lease_whose_url_could_add_header_fields_is_refused() throws Exception {
    ImageService a = instance("a");
    ImageService b = instance("b");
    a.create(new CreateImageCommand("vm", 4L << 20, null, 65536L, null, null, null, null));
    List<String> leaseKeys = store.list("").stream().filter(key -> key.endsWith("/lease")).toList();
    assertThat(leaseKeys).hasSize(1);
    String key = leaseKeys.get(0);
    String text = StandardCharsets.ISO_8859_1.decode(store.get(key)).toString();
    Properties lease = new Properties();
    lease.load(new StringReader(text));
    lease.setProperty("url", "http://a:8080\r\nSet-Cookie: session=stolen");
    StringWriter rewritten = new StringWriter();
    lease.store(rewritten, null);
    store.put(key, ByteBuffer.wrap(rewritten.toString().getBytes(StandardCharsets.ISO_8859_1)));

    assertThatThrownBy(() -> read(b, "vm", 0, 512))
        .isInstanceOf(ImageUnavailableException.class)
        .hasRootCauseMessage(
            "an instance's URL may hold only visible ASCII characters; character 13 is not one")
        .hasMessageNotContaining("Set-Cookie");

    assertThatThrownBy(() -> new BucketLeases.Node("n", "http://a:8080\n"))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> new BucketLeases.Node("n", "ftp://a"))
        .isInstanceOf(IllegalArgumentException.class);
    assertThat(new BucketLeases.Node("n", "https://a.example:8443/fvdisk").url())
        .isEqualTo("https://a.example:8443/fvdisk");
    // An instance's own URL is checked where its bucket directory is made, at start.
    assertThatThrownBy(
            () ->
                new BucketImageDirectory(
                    Files.createDirectories(dir.resolve("c")).toRealPath(),
                    store,
                    transfers,
                    BucketStorage.Settings.DEFAULTS,
                    "c",
                    "http://c:8080\r\nX: y",
                    LEASE,
                    clock::get))
        .isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void a_session_attached_across_a_takeover_cannot_write_any_more() throws Exception {
    ImageService a = instance("a");
    ImageService b = instance("b");
    a.create(new CreateImageCommand("vm", 4L << 20, null, 65536L, null, null, null, null));
    try (VirtualDisk session = a.attachSession("vm", Access.READ_WRITE)) {
      session.write(0, ByteBuffer.wrap(filled(512, 1)), Durability.DURABLE);
      sleepThroughLease();
      write(b, "vm", 512, filled(512, 2), Durability.DURABLE);
      // The session holds the image without a look-up: the log's epoch fences it.
      assertThatThrownBy(
              () -> session.write(1024, ByteBuffer.wrap(filled(512, 3)), Durability.DURABLE))
          .isInstanceOf(ServiceException.class);
    }
    assertThat(read(b, "vm", 0, 512)).isEqualTo(filled(512, 1));
    assertThat(read(b, "vm", 512, 512)).isEqualTo(filled(512, 2));
    assertThat(read(b, "vm", 1024, 512)).isEqualTo(new byte[512]);
  }

  @Test
  void an_owner_that_renews_keeps_its_images_and_a_restart_of_it_takes_them_back_at_once()
      throws Exception {
    ImageService a = instance("a");
    ImageService b = instance("b");
    a.create(new CreateImageCommand("vm", 1L << 20, null, 65536L, null, null, null, null));
    for (int i = 0; i < 5; i++) {
      clock.addAndGet(LEASE.toMillis() / 3);
      a.renewLeases();
      assertThatThrownBy(() -> read(b, "vm", 0, 512)).isInstanceOf(ImageElsewhereException.class);
    }
    write(a, "vm", 0, filled(512, 7), Durability.DURABLE);
    // Killed (no release) and started again under the same node id: no wait for the lease.
    ImageService again = instance("a");
    assertThat(read(again, "vm", 0, 512)).isEqualTo(filled(512, 7));
    assertThat(leases(again)).as("its own lease is not taken over").containsExactly(1L, 0L, 0L);
    // A clean shutdown gives the lease up: B takes the image without waiting.
    again.close();
    services.remove(again);
    assertThat(read(b, "vm", 0, 512)).isEqualTo(filled(512, 7));
    assertThat(leases(b)).as("B took the lease A gave up").containsExactly(1L, 1L, 0L);
  }

  @Test
  void images_created_and_deleted_on_one_instance_are_seen_by_the_other() throws Exception {
    ImageService a = instance("a");
    ImageService b = instance("b");
    a.create(new CreateImageCommand("one", 1L << 20, null, 65536L, null, null, null, null));
    b.create(new CreateImageCommand("two", 1L << 20, null, 65536L, null, null, null, null));
    assertThat(a.list()).extracting(ImageDescriptor::name).containsExactly("one", "two");
    assertThat(b.list()).extracting(ImageDescriptor::name).containsExactly("one", "two");
    assertThat(b.list().get(0).sizeBytes()).isEqualTo(1L << 20);
    assertThatThrownBy(
            () ->
                b.create(
                    new CreateImageCommand("one", 1L << 20, null, 65536L, null, null, null, null)))
        .isInstanceOf(ImageExistsException.class);
    a.delete("one", null);
    assertThat(b.list()).extracting(ImageDescriptor::name).containsExactly("two");
    assertThatThrownBy(() -> read(b, "one", 0, 512)).isInstanceOf(ImageNotFoundException.class);
  }

  /** A clone is served by the instance that serves its base, which reads through it. */
  @Test
  void a_clone_is_created_and_served_where_its_base_is() throws Exception {
    ImageService a = instance("a");
    ImageService b = instance("b");
    a.create(new CreateImageCommand("golden", 1L << 20, null, 65536L, null, null, null, null));
    write(a, "golden", 0, filled(512, 9), Durability.DURABLE);
    a.update("golden", new ImageChanges(null, true, null, null, null), null);
    CreateImageCommand clone =
        new CreateImageCommand("vm", null, "golden", null, null, null, null, null);
    assertThatThrownBy(() -> b.create(clone))
        .isInstanceOfSatisfying(
            ImageElsewhereException.class,
            e -> assertThat(e.ownerUrl()).isEqualTo("http://a:8080"));
    a.create(clone);
    write(a, "vm", 512, filled(512, 8), Durability.DURABLE);
    assertThatThrownBy(() -> read(b, "vm", 0, 512)).isInstanceOf(ImageElsewhereException.class);

    // A stops; B takes the clone over, and its base with it.
    sleepThroughLease();
    assertThat(read(b, "vm", 0, 512)).isEqualTo(filled(512, 9));
    assertThat(read(b, "vm", 512, 512)).isEqualTo(filled(512, 8));
    assertThat(read(b, "golden", 0, 512)).isEqualTo(filled(512, 9));
  }

  /**
   * Both instances reach for the image at once after its lease ran out, round after round: each
   * round exactly one of them writes, and the image ends up holding every round's winner.
   */
  @Test
  void of_two_instances_racing_for_an_image_exactly_one_serves_it_each_round() throws Exception {
    ImageService a = instance("a");
    ImageService b = instance("b");
    a.create(new CreateImageCommand("vm", 1L << 20, null, 65536L, null, null, null, null));
    ExecutorService racers = Executors.newFixedThreadPool(2);
    int[] winners = new int[40];
    try {
      for (int round = 0; round < winners.length; round++) {
        sleepThroughLease();
        CountDownLatch start = new CountDownLatch(1);
        List<Future<Boolean>> tries = new ArrayList<>();
        for (ImageService s : List.of(a, b)) {
          int node = s == a ? 1 : 2;
          long offset = round * 512L;
          Callable<Boolean> attempt =
              () -> {
                start.await();
                try {
                  write(s, "vm", offset, filled(512, node), Durability.DURABLE);
                  return true;
                } catch (ImageElsewhereException | ImageUnavailableException e) {
                  return false;
                }
              };
          tries.add(racers.submit(attempt));
        }
        start.countDown();
        boolean aWon = tries.get(0).get();
        boolean bWon = tries.get(1).get();
        assertThat(aWon ^ bWon).as("round %d: exactly one instance wrote", round).isTrue();
        winners[round] = aWon ? 1 : 2;
      }
    } finally {
      racers.shutdownNow();
    }
    sleepThroughLease();
    for (int round = 0; round < winners.length; round++) {
      assertThat(read(b, "vm", round * 512L, 512))
          .as("round %d", round)
          .isEqualTo(filled(512, winners[round]));
    }
  }

  private static byte[] filled(int n, int value) {
    byte[] b = new byte[n];
    Arrays.fill(b, (byte) value);
    return b;
  }

  private static void write(
      ImageService service, String name, long offset, byte[] data, Durability durability) {
    try (VirtualDisk disk = service.attach(name, Access.READ_WRITE)) {
      disk.write(offset, ByteBuffer.wrap(data), durability);
    }
  }

  private static byte[] read(ImageService service, String name, long offset, int length) {
    ByteBuffer data = ByteBuffer.allocate(length);
    try (VirtualDisk disk = service.attach(name, Access.READ_ONLY)) {
      disk.read(offset, data);
    }
    return data.array();
  }
}
