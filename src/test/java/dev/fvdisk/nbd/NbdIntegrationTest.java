package dev.fvdisk.nbd;

import static dev.fvdisk.nbd.Nbd.*;
import static io.restassured.RestAssured.given;
import static org.assertj.core.api.Assertions.assertThat;

import dev.fvdisk.testing.NbdTools;
import dev.fvdisk.testing.QemuImg;
import io.restassured.path.json.JsonPath;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.boot.test.context.SpringBootTest;

/**
 * The NBD export against real clients (libnbd's tools and Python module, QEMU's qemu-io and
 * qemu-img) and a raw socket, on a really started service; what they write is checked over HTTP.
 * Skipped where the tools are missing, except in CI.
 */
@SpringBootTest(
    webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
    properties = {"fvdisk.nbd.handshake-timeout=2s", "fvdisk.nbd.max-connections-per-peer=12"})
class NbdIntegrationTest extends NbdServiceTestSupport {

  @Test
  void nbdinfo_sees_the_size_flags_block_sizes_and_context_and_lists_images(@TempDir Path work)
      throws Exception {
    NbdTools.assumeAvailable();
    String name = createImage("nbd", 64 * MIB);
    JsonPath info = new JsonPath(QemuImg.run(work, "nbdinfo", "--json", uri(name)));
    String export = "exports[0].";
    assertThat(info.getString(export + "export-name")).isEqualTo(name);
    assertThat(info.getLong(export + "export-size")).isEqualTo(64 * MIB);
    for (String flag :
        List.of("can_flush", "can_fua", "can_trim", "can_zero", "can_df", "can_multi_conn")) {
      assertThat(info.getBoolean(export + flag)).as(flag).isTrue();
    }
    assertThat(info.getBoolean(export + "is_read_only")).isFalse();
    assertThat(info.getInt(export + "block_size_minimum")).isEqualTo(1);
    assertThat(info.getInt(export + "block_size_preferred")).isEqualTo(4096);
    assertThat(info.getInt(export + "block_size_maximum")).isEqualTo(32 << 20);
    assertThat(info.getList(export + "contexts", String.class)).contains("base:allocation");

    // nbdinfo --list asks about each export with options of their own, about two per image.
    List<String> more = new ArrayList<>();
    for (int i = 0; i < 40; i++) {
      more.add(createImage("nbd-listed", MIB));
    }
    String list = QemuImg.run(work, "nbdinfo", "--list", "nbd://127.0.0.1:" + nbd.port());
    assertThat(list).contains("export=\"" + name + "\"");
    for (String listed : more) {
      assertThat(list).contains("export=\"" + listed + "\"");
    }
  }

  @Test
  void qemu_io_writes_unaligned_the_last_sector_with_fua_zeroes_and_discards(@TempDir Path work)
      throws Exception {
    NbdTools.assumeAvailable();
    long size = 64 * MIB;
    String name = createImage("nbd", size);
    QemuImg.run(
        work,
        "qemu-io",
        "-f",
        "raw",
        "-c",
        "write -P 0x11 3 5",
        "-c",
        "read -P 0x11 3 5",
        "-c",
        "read -P 0 0 3",
        "-c",
        "write -f -P 0xcd " + (size - 512) + " 512",
        "-c",
        "write -P 0xab 1M 1M",
        "-c",
        "write -z 1536K 4K",
        "-c",
        "write -z -u 4M 1M",
        "-c",
        "discard 8M 1M",
        "-c",
        "flush",
        uri(name));
    byte[] head = httpRead(name, 0, 8);
    assertThat(head).containsExactly(0, 0, 0, 0x11, 0x11, 0x11, 0x11, 0x11);
    byte[] last = httpRead(name, size - 512, 512);
    assertThat(last).containsOnly((byte) 0xcd);
    byte[] middle = httpRead(name, MIB, MIB);
    for (int i = 0; i < middle.length; i++) {
      byte expected = i >= 512 * 1024 && i < 512 * 1024 + 4096 ? 0 : (byte) 0xab;
      if (middle[i] != expected) {
        throw new AssertionError("byte " + (MIB + i) + " is " + middle[i]);
      }
    }
  }

  @Test
  void qemu_img_converts_both_ways_and_its_map_matches_the_http_map(@TempDir Path work)
      throws Exception {
    NbdTools.assumeAvailable();
    String name = createImage("nbd", 64 * MIB);
    QemuImg.run(work, "qemu-img", "create", "-q", "-f", "qcow2", "src.qcow2", "64M");
    QemuImg.run(
        work,
        "qemu-io",
        "-c",
        "write -P 0x11 1M 1M",
        "-c",
        "write -z 8M 1M",
        "-c",
        "write -P 0x22 60M 3M",
        "-c",
        "write -P 0x33 33M 7",
        "src.qcow2");
    QemuImg.run(
        work, "qemu-img", "convert", "-n", "-f", "qcow2", "-O", "raw", "src.qcow2", uri(name));
    QemuImg.run(work, "qemu-img", "compare", "-f", "qcow2", "-F", "raw", "src.qcow2", uri(name));
    QemuImg.run(work, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", uri(name), "back.qcow2");
    QemuImg.run(
        work, "qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", "src.qcow2", "back.qcow2");
    // Out-of-order writes with 16 in flight.
    String second = createImage("nbd", 64 * MIB);
    QemuImg.run(
        work,
        "qemu-img",
        "convert",
        "-W",
        "-m",
        "16",
        "-n",
        "-f",
        "qcow2",
        "-O",
        "raw",
        "src.qcow2",
        uri(second));
    QemuImg.run(work, "qemu-img", "compare", "-f", "qcow2", "-F", "raw", "src.qcow2", uri(second));

    // qemu-img map (BLOCK_STATUS with REQ_ONE, walked) says data exactly where HTTP's map does.
    JsonPath qemuMap =
        new JsonPath(
            "{\"m\":"
                + QemuImg.run(work, "qemu-img", "map", "--output=json", "-f", "raw", uri(name))
                + "}");
    JsonPath httpMap =
        new JsonPath(
            given()
                .port(httpPort)
                .get(IMAGES + "/" + name + "/map")
                .then()
                .statusCode(200)
                .extract()
                .asString());
    assertThat(dataRanges(qemuMap.getList("m"), "start", "length", "data"))
        .isEqualTo(dataRanges(httpMap.getList("extents"), "offsetBytes", "lengthBytes", "state"));
  }

  /** The data ranges of a map, neighbours merged, as [start, end) pairs. */
  @SuppressWarnings("unchecked")
  private static List<List<Long>> dataRanges(
      List<Object> extents, String start, String length, String dataKey) {
    List<List<Long>> ranges = new ArrayList<>();
    for (Object o : extents) {
      Map<String, Object> e = (Map<String, Object>) o;
      Object d = e.get(dataKey);
      boolean data = Boolean.TRUE.equals(d) || "data".equals(d) || "base".equals(d);
      if (!data) {
        continue;
      }
      long s = ((Number) e.get(start)).longValue();
      long end = s + ((Number) e.get(length)).longValue();
      if (!ranges.isEmpty() && ranges.get(ranges.size() - 1).get(1) == s) {
        ranges.get(ranges.size() - 1).set(1, end);
      } else {
        ranges.add(new ArrayList<>(List.of(s, end)));
      }
    }
    return ranges;
  }

  @Test
  void nbdcopy_with_several_connections_copies_both_ways(@TempDir Path work) throws Exception {
    NbdTools.assumeAvailable();
    String name = createImage("nbd", 32 * MIB);
    byte[] source = new byte[(int) (32 * MIB)];
    Random random = new Random(7);
    for (int i = 0; i < 32; i += 2) {
      byte[] piece = new byte[(int) MIB];
      random.nextBytes(piece);
      System.arraycopy(piece, 0, source, (int) (i * MIB), piece.length);
    }
    Files.write(work.resolve("src.raw"), source);
    QemuImg.run(work, "nbdcopy", "--flush", "--connections=4", "src.raw", uri(name));
    assertThat(httpReadAll(name)).isEqualTo(source);
    QemuImg.run(work, "nbdcopy", "--connections=4", uri(name), "out.raw");
    assertThat(Files.readAllBytes(work.resolve("out.raw"))).isEqualTo(source);
  }

  @Test
  void a_write_acknowledged_on_one_connection_is_seen_on_another(@TempDir Path work)
      throws Exception {
    NbdTools.assumeAvailable();
    String name = createImage("nbd", 8 * MIB);
    String script =
        String.join(
            "\n",
            "import nbd, sys",
            "h1 = nbd.NBD(); h1.connect_uri(sys.argv[1])",
            "h2 = nbd.NBD(); h2.connect_uri(sys.argv[1])",
            "x = b'q' * 4096",
            "h1.pwrite(x, 8192); h1.flush()",
            "assert h2.pread(4096, 8192) == x, 'flush'",
            "y = b'z' * 512",
            "h1.pwrite(y, 100000, nbd.CMD_FLAG_FUA)",
            "assert h2.pread(512, 100000) == y, 'fua'",
            "h2.pwrite(b'w' * 10, 5)",
            "assert h1.pread(10, 5) == b'w' * 10, 'plain write'",
            "print('consistent')");
    String out = QemuImg.run(work, NbdTools.PYTHON, "-c", script, uri(name));
    assertThat(out).contains("consistent");
    assertThat(httpRead(name, 5, 10)).containsOnly((byte) 'w');

    String metrics =
        given()
            .port(httpPort)
            .get("/actuator/prometheus")
            .then()
            .statusCode(200)
            .extract()
            .asString();
    assertThat(metrics)
        .contains("fvdisk_nbd_requests_seconds_count{command=\"write\",outcome=\"ok\"}")
        .contains("fvdisk_nbd_bytes_total{direction=\"write\"}")
        .contains("fvdisk_nbd_connections ")
        .contains("fvdisk_nbd_requests_in_progress ");
  }

  @Test
  void errors_are_those_of_the_protocol_table(@TempDir Path work) throws Exception {
    NbdTools.assumeAvailable();
    long size = 64 * MIB;
    String name = createImage("nbd", size);
    Path script = work.resolve("errors.py");
    try (InputStream in = getClass().getResourceAsStream("/nbd/errors.py")) {
      Files.write(script, in.readAllBytes());
    }
    Map<String, String> results = new HashMap<>();
    for (String line :
        QemuImg.run(work, NbdTools.PYTHON, script.toString(), uri(name), Long.toString(size))
            .split("\n")) {
      String[] parts = line.trim().split(" ");
      if (parts.length == 2) {
        results.put(parts[0], parts[1]);
      }
    }
    assertThat(results)
        .containsEntry("read-past-end", "EINVAL")
        .containsEntry("write-past-end", "ENOSPC")
        .containsEntry("zero-past-end", "ENOSPC")
        .containsEntry("trim-past-end", "EINVAL")
        .containsEntry("status-past-end", "EINVAL")
        .containsEntry("read-zero-length", "ok")
        .containsEntry("write-zero-length", "ok")
        .containsEntry("read-unaligned", "ok")
        .containsEntry("zero-64m", "ok")
        .containsEntry("read-33m", "EINVAL")
        .containsEntry("unknown-flag", "EINVAL")
        .containsEntry("df-read", "ok")
        .containsEntry("status-without-context", "EINVAL");
  }

  @Test
  void a_read_only_image_is_a_read_only_export(@TempDir Path work) throws Exception {
    NbdTools.assumeAvailable();
    String name = createImage("nbd", 4 * MIB);
    patch(name, Map.of("readOnly", true));
    String script =
        String.join(
            "\n",
            "import nbd, sys",
            "h = nbd.NBD(); h.set_strict_mode(0); h.connect_uri(sys.argv[1])",
            "print('read-only', h.is_read_only())",
            "try:",
            "    h.pwrite(b'x', 0); print('write ok')",
            "except nbd.Error as e:",
            "    print('write', e.errno)");
    String out = QemuImg.run(work, NbdTools.PYTHON, "-c", script, uri(name));
    assertThat(out).contains("read-only True").contains("write EPERM");
  }

  @Test
  void an_attached_image_is_not_deleted_until_its_session_ends() throws Exception {
    String name = createImage("nbd", 4 * MIB);
    try (NbdTestClient client = NbdTestClient.open(nbd.port(), name)) {
      given()
          .port(httpPort)
          .delete(IMAGES + "/" + name)
          .then()
          .statusCode(409)
          .body("type", org.hamcrest.Matchers.endsWith("/image-attached"));
      client.send(0, CMD_READ, 1, 0, 512, null);
      client.flushOut();
      assertThat(client.reply().error()).isZero();
      client.send(0, CMD_DISC, 2, 0, 0, null);
      client.flushOut();
      assertThat(client.in.read()).as("DISC ends the connection").isEqualTo(-1);
    }
    // The session's end unpins the image a moment after the socket closes.
    long deadline = System.nanoTime() + 10_000_000_000L;
    int status;
    do {
      status = given().port(httpPort).delete(IMAGES + "/" + name).then().extract().statusCode();
    } while (status == 409 && System.nanoTime() < deadline);
    assertThat(status).isEqualTo(204);
  }

  @Test
  void disc_with_requests_in_flight_answers_them_all_then_closes() throws Exception {
    String name = createImage("nbd", 16 * MIB);
    try (NbdTestClient client = NbdTestClient.open(nbd.port(), name)) {
      byte[] data = new byte[(int) MIB];
      new Random(3).nextBytes(data);
      Set<Long> cookies = new HashSet<>();
      for (int i = 0; i < 12; i++) {
        client.send(i % 3 == 0 ? CMD_FLAG_FUA : 0, CMD_WRITE, 100 + i, i * MIB, MIB, data);
        cookies.add(100L + i);
      }
      client.send(0, CMD_DISC, 1, 0, 0, null);
      client.flushOut();
      Set<Long> answered = new HashSet<>();
      for (int i = 0; i < 12; i++) {
        Transcript.Reply r = client.reply();
        assertThat(r.error()).isZero();
        answered.add(r.cookie());
      }
      assertThat(answered).isEqualTo(cookies);
      assertThat(client.in.read()).isEqualTo(-1);
    }
    assertThat(httpRead(name, 11 * MIB, MIB)).isEqualTo(httpRead(name, 0, MIB));
  }

  @Test
  void a_stalled_handshake_is_closed_at_the_deadline() throws Exception {
    try (Socket socket = new Socket("127.0.0.1", nbd.port())) {
      socket.setSoTimeout(20_000);
      InputStream in = socket.getInputStream();
      assertThat(in.readNBytes(18)).hasSize(18); // the greeting; then say nothing
      long started = System.nanoTime();
      assertThat(in.read()).isEqualTo(-1);
      assertThat((System.nanoTime() - started) / 1_000_000_000.0).isLessThan(15);
    }
  }

  @Test
  void connections_over_the_per_peer_limit_are_closed_at_once() throws Exception {
    List<NbdTestClient> held = new ArrayList<>();
    try {
      // Other tests may hold a connection for a moment; fill up to the limit of 12.
      int refusedAt = -1;
      for (int i = 0; i < 14 && refusedAt < 0; i++) {
        try {
          held.add(NbdTestClient.greeted(nbd.port()));
        } catch (EOFException | java.net.SocketException e) {
          refusedAt = i;
        }
      }
      assertThat(refusedAt).as("a connection was refused").isBetween(1, 12);
    } finally {
      for (NbdTestClient c : held) {
        c.close();
      }
    }
  }

  @Test
  void reads_of_a_clone_report_its_base_as_data(@TempDir Path work) throws Exception {
    NbdTools.assumeAvailable();
    String base = createImage("nbd", 8 * MIB);
    byte[] data = new byte[(int) MIB];
    java.util.Arrays.fill(data, (byte) 0x5a);
    httpWrite(base, 2 * MIB, data);
    patch(base, Map.of("readOnly", true));
    String clone = base + "-clone";
    create(Map.of("name", clone, "base", base));
    // Base-backed data is allocated (flags 0) to NBD, as over a qcow2 backing chain.
    String map = QemuImg.run(work, "nbdinfo", "--map", uri(clone));
    long dataCovering = 0;
    for (String line : map.strip().split("\n")) {
      String[] f = line.trim().split("\\s+");
      long start = Long.parseLong(f[0]);
      long end = start + Long.parseLong(f[1]);
      long overlap = Math.max(0, Math.min(end, 3 * MIB) - Math.max(start, 2 * MIB));
      if (f[2].equals("0")) {
        dataCovering += overlap;
      } else {
        assertThat(overlap).as("a hole over the base's data: %s", line).isZero();
      }
    }
    assertThat(dataCovering).isEqualTo(MIB);
    String out =
        QemuImg.run(
            work,
            "qemu-io",
            "-f",
            "raw",
            "-c",
            "read -P 0x5a 2M 1M",
            "-c",
            "read -P 0 0 2M",
            uri(clone));
    assertThat(out).doesNotContain("Pattern verification failed");
  }

  /**
   * Prefetching adapts to a VM's own I/O: NBD requests count as the clone's client I/O, as HTTP
   * requests do, so copying waits while a client keeps the clone busy and finishes once it stops.
   * Unhindered, prefetching copies these 64 MiB in well under the 3 s the client runs.
   */
  @Test
  void prefetching_waits_while_an_nbd_client_keeps_the_clone_busy() throws Exception {
    String base = createImage("nbd-golden", 64 * MIB);
    byte[] data = new byte[(int) MIB];
    for (int i = 0; i < 64; i++) {
      java.util.Arrays.fill(data, (byte) (i + 1));
      httpWrite(base, i * MIB, data);
    }
    patch(base, Map.of("readOnly", true));
    String clone = base + "-vm";
    create(Map.of("name", clone, "base", base, "copyOnRead", false));
    AtomicBoolean stop = new AtomicBoolean();
    AtomicLong served = new AtomicLong();
    try (NbdTestClient vm = NbdTestClient.open(nbd.port(), clone)) {
      CompletableFuture<Void> client =
          CompletableFuture.runAsync(
              () -> {
                try {
                  for (long cookie = 0; !stop.get(); cookie++) {
                    vm.send(0, CMD_READ, cookie, (cookie % 256) * 4096, 4096, null);
                    vm.flushOut();
                    Transcript.Reply r = vm.reply();
                    if (r.error() != 0) {
                      throw new AssertionError("read failed: " + r.error());
                    }
                    served.incrementAndGet();
                  }
                } catch (IOException e) {
                  throw new UncheckedIOException(e);
                }
              });
      while (served.get() < 100) {
        assertThat(client).isNotDone();
        Thread.sleep(10);
      }
      patch(clone, Map.of("prefetch", Map.of("enabled", true, "startDelaySeconds", 0)));
      Thread.sleep(3000);
      long copiedWhileBusy = image(clone).getLong("prefetch.copiedBytes");
      stop.set(true);
      client.get();
      assertThat(served.get()).as("the client kept reading").isGreaterThan(1000);
      // A stall of the test machine longer than the quiet window lets a step or two through:
      // CI on Java 25 saw 21 MiB once.
      assertThat(copiedWhileBusy)
          .as("copied while the client kept the clone busy")
          .isLessThan(40 * MIB);
    }
    long deadline = System.nanoTime() + 60_000_000_000L;
    while (!"done".equals(image(clone).getString("prefetch.state"))) {
      assertThat(System.nanoTime())
          .as("prefetching finishes once the client stops")
          .isLessThan(deadline);
      Thread.sleep(50);
    }
    assertThat(image(clone).getString("base")).isNull();
    assertThat(httpRead(clone, 63 * MIB, 4)).containsOnly(64);
  }
}
