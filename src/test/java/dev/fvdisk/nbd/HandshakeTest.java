package dev.fvdisk.nbd;

import static dev.fvdisk.nbd.Nbd.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.Test;

/** The handshake on byte transcripts: every option, and every way a client can get it wrong. */
class HandshakeTest {

  private static final int FIXED = CLIENT_FIXED_NEWSTYLE | CLIENT_NO_ZEROES;

  /** Two exports: a writable "vm-1" of 1 MiB and a read-only "golden" of 2 MiB. */
  private final Map<String, MemoryDisk> disks = new TreeMap<>();

  private final List<MemoryDisk> attached = new ArrayList<>();

  private final Exports exports =
      new Exports() {
        @Override
        public List<String> names() {
          return List.copyOf(disks.keySet());
        }

        @Override
        public @Nullable Export attach(String name, boolean forSession) {
          MemoryDisk disk = disks.get(name);
          if (disk == null) {
            return null;
          }
          MemoryDisk handle = new MemoryDisk(name, (int) disk.sizeBytes(), disk.readOnly());
          attached.add(handle);
          return new Export(handle, disk.readOnly(), "an image");
        }
      };

  private boolean stopping;
  private NbdLimits limits = NbdLimits.DEFAULTS;

  HandshakeTest() {
    disks.put("vm-1", new MemoryDisk("vm-1", 1 << 20, false));
    disks.put("golden", new MemoryDisk("golden", 2 << 20, true));
  }

  /** What the server wrote, and what the handshake returned or threw. */
  private record Outcome(DataInputStream server, Handshake.@Nullable Agreed agreed) {}

  private Outcome run(Transcript client) throws IOException {
    ByteArrayOutputStream written = new ByteArrayOutputStream();
    Handshake.Agreed agreed =
        new Handshake(
                client.input(),
                new DataOutputStream(written),
                exports,
                limits,
                () -> stopping,
                null)
            .run();
    DataInputStream server = new DataInputStream(new ByteArrayInputStream(written.toByteArray()));
    assertThat(server.readLong()).isEqualTo(NBDMAGIC);
    assertThat(server.readLong()).isEqualTo(IHAVEOPT);
    assertThat(server.readUnsignedShort()).isEqualTo(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES);
    return new Outcome(server, agreed);
  }

  private static Transcript client() {
    return new Transcript().clientFlags(FIXED);
  }

  @Test
  void goAnswersTheExportAndBlockSizesThenHandsTheSessionOver() throws IOException {
    Outcome o =
        run(
            client()
                .option(OPT_STRUCTURED_REPLY, new byte[0])
                .option(OPT_SET_META_CONTEXT, Transcript.metaRequest("vm-1", BASE_ALLOCATION))
                .option(OPT_GO, Transcript.exportRequest("vm-1", INFO_BLOCK_SIZE, INFO_NAME)));
    assertThat(Transcript.optionReply(o.server()).type()).isEqualTo(REP_ACK);
    Transcript.OptionReply meta = Transcript.optionReply(o.server());
    assertThat(meta.type()).isEqualTo(REP_META_CONTEXT);
    ByteBuffer m = ByteBuffer.wrap(meta.data());
    assertThat(m.getInt()).isEqualTo(BASE_ALLOCATION_ID);
    assertThat(StandardCharsets.US_ASCII.decode(m).toString()).isEqualTo(BASE_ALLOCATION);
    assertThat(Transcript.optionReply(o.server()).type()).isEqualTo(REP_ACK);

    ByteBuffer export = ByteBuffer.wrap(Transcript.optionReply(o.server()).data());
    assertThat(export.getShort()).isEqualTo((short) INFO_EXPORT);
    assertThat(export.getLong()).isEqualTo(1 << 20);
    int flags = Short.toUnsignedInt(export.getShort());
    assertThat(flags)
        .isEqualTo(
            TF_HAS_FLAGS
                | TF_SEND_FLUSH
                | TF_SEND_FUA
                | TF_SEND_TRIM
                | TF_SEND_WRITE_ZEROES
                | TF_SEND_DF
                | TF_CAN_MULTI_CONN);
    ByteBuffer sizes = ByteBuffer.wrap(Transcript.optionReply(o.server()).data());
    assertThat(sizes.getShort()).isEqualTo((short) INFO_BLOCK_SIZE);
    assertThat(List.of(sizes.getInt(), sizes.getInt(), sizes.getInt()))
        .containsExactly(1, 4096, 32 << 20);
    ByteBuffer name = ByteBuffer.wrap(Transcript.optionReply(o.server()).data());
    assertThat(name.getShort()).isEqualTo((short) INFO_NAME);
    assertThat(StandardCharsets.UTF_8.decode(name).toString()).isEqualTo("vm-1");
    Transcript.OptionReply ack = Transcript.optionReply(o.server());
    assertThat(ack.type()).isEqualTo(REP_ACK);
    assertThat(ack.option()).isEqualTo(OPT_GO);
    assertThat(o.server().available()).as("nothing after GO's ACK").isZero();

    assertThat(o.agreed()).isNotNull();
    assertThat(o.agreed().name()).isEqualTo("vm-1");
    assertThat(o.agreed().structuredReplies()).isTrue();
    assertThat(o.agreed().baseAllocation()).isTrue();
    assertThat(o.agreed().transmissionFlags()).isEqualTo(flags);
  }

  @Test
  void infoReportsTheSameFlagsAsGoAndClosesItsAttachment() throws IOException {
    Outcome o =
        run(
            client()
                .option(OPT_INFO, Transcript.exportRequest("golden", INFO_DESCRIPTION))
                .option(OPT_GO, Transcript.exportRequest("golden")));
    ByteBuffer info = ByteBuffer.wrap(Transcript.optionReply(o.server()).data());
    info.getShort();
    assertThat(info.getLong()).isEqualTo(2 << 20);
    int infoFlags = Short.toUnsignedInt(info.getShort());
    assertThat(infoFlags & TF_READ_ONLY).isNotZero();
    assertThat(infoFlags & TF_SEND_DF).as("DF only with structured replies").isZero();
    Transcript.optionReply(o.server()); // block sizes
    Transcript.OptionReply description = Transcript.optionReply(o.server());
    assertThat(ByteBuffer.wrap(description.data()).getShort()).isEqualTo((short) INFO_DESCRIPTION);
    assertThat(Transcript.optionReply(o.server()).type()).isEqualTo(REP_ACK);
    assertThat(attached.get(0).closed).as("INFO's attachment is closed").isTrue();

    ByteBuffer go = ByteBuffer.wrap(Transcript.optionReply(o.server()).data());
    go.getShort();
    go.getLong();
    assertThat(Short.toUnsignedInt(go.getShort())).isEqualTo(infoFlags);
    assertThat(o.agreed().baseAllocation()).isFalse();
    assertThat(attached.get(1).closed).isFalse();
  }

  @Test
  void unknownAndMalformedOptionsGetErrorsAndTheNextOptionIsStillParsed() throws IOException {
    Outcome o =
        run(
            client()
                .option(99, "whatever".getBytes(StandardCharsets.UTF_8))
                .option(OPT_LIST, new byte[] {1, 2, 3})
                .option(OPT_STRUCTURED_REPLY, new byte[] {0})
                .option(OPT_SET_META_CONTEXT, Transcript.metaRequest("vm-1", BASE_ALLOCATION))
                .option(OPT_GO, Transcript.exportRequest("no-such-image"))
                .option(OPT_GO, new byte[] {0, 0, 0, 9, 'a'})
                .option(OPT_INFO, Transcript.exportRequest("bad\0name"))
                .option(OPT_STARTTLS, new byte[0])
                .option(OPT_LIST, new byte[0])
                .option(OPT_ABORT, new byte[0]));
    assertThat(Transcript.optionReply(o.server()).type()).isEqualTo(REP_ERR_UNSUP);
    assertThat(Transcript.optionReply(o.server()).type()).isEqualTo(REP_ERR_INVALID);
    assertThat(Transcript.optionReply(o.server()).type()).isEqualTo(REP_ERR_INVALID);
    Transcript.OptionReply beforeSr = Transcript.optionReply(o.server());
    assertThat(beforeSr.type()).isEqualTo(REP_ERR_INVALID);
    assertThat(beforeSr.text()).contains("STRUCTURED_REPLY");
    Transcript.OptionReply unknown = Transcript.optionReply(o.server());
    assertThat(unknown.type()).isEqualTo(REP_ERR_UNKNOWN);
    assertThat(unknown.text()).contains("no-such-image");
    assertThat(Transcript.optionReply(o.server()).type()).isEqualTo(REP_ERR_INVALID);
    assertThat(Transcript.optionReply(o.server()).type()).isEqualTo(REP_ERR_INVALID);
    assertThat(Transcript.optionReply(o.server()).type()).isEqualTo(REP_ERR_POLICY);
    List<String> listed = new ArrayList<>();
    Transcript.OptionReply r;
    while ((r = Transcript.optionReply(o.server())).type() == REP_SERVER) {
      ByteBuffer b = ByteBuffer.wrap(r.data());
      byte[] name = new byte[b.getInt()];
      b.get(name);
      listed.add(new String(name, StandardCharsets.UTF_8));
    }
    assertThat(r.type()).isEqualTo(REP_ACK);
    assertThat(listed).containsExactly("golden", "vm-1");
    assertThat(Transcript.optionReply(o.server()).type()).as("ABORT").isEqualTo(REP_ACK);
    assertThat(o.agreed()).isNull();
    assertThat(attached).isEmpty();
  }

  @Test
  void metaContextsListBaseAllocationAndSetOnlyWhatWasAsked() throws IOException {
    Outcome o =
        run(
            client()
                .option(OPT_LIST_META_CONTEXT, Transcript.metaRequest("vm-1"))
                .option(OPT_LIST_META_CONTEXT, Transcript.metaRequest("vm-1", "base:"))
                .option(OPT_STRUCTURED_REPLY, new byte[0])
                .option(OPT_SET_META_CONTEXT, Transcript.metaRequest("vm-1", "qemu:dirty-bitmap:x"))
                .option(OPT_SET_META_CONTEXT, Transcript.metaRequest("golden", BASE_ALLOCATION))
                .option(OPT_GO, Transcript.exportRequest("vm-1")));
    for (int i = 0; i < 2; i++) {
      assertThat(Transcript.optionReply(o.server()).type()).isEqualTo(REP_META_CONTEXT);
      assertThat(Transcript.optionReply(o.server()).type()).isEqualTo(REP_ACK);
    }
    assertThat(Transcript.optionReply(o.server()).type()).isEqualTo(REP_ACK); // SR
    assertThat(Transcript.optionReply(o.server()).type()).as("nothing matched").isEqualTo(REP_ACK);
    assertThat(Transcript.optionReply(o.server()).type()).isEqualTo(REP_META_CONTEXT);
    assertThat(Transcript.optionReply(o.server()).type()).isEqualTo(REP_ACK);
    // The context was selected for "golden"; GO to "vm-1" drops it.
    assertThat(o.agreed().baseAllocation()).isFalse();
  }

  @Test
  void exportNameAnswersSizeAndFlagsWithTheZeroPaddingUnlessRefused() throws IOException {
    for (int clientFlags : new int[] {CLIENT_FIXED_NEWSTYLE, FIXED, 0}) {
      Outcome o =
          run(
              new Transcript()
                  .clientFlags(clientFlags)
                  .option(OPT_EXPORT_NAME, "vm-1".getBytes(StandardCharsets.UTF_8)));
      assertThat(o.server().readLong()).isEqualTo(1 << 20);
      assertThat(o.server().readUnsignedShort() & TF_READ_ONLY).isZero();
      boolean padded = (clientFlags & CLIENT_NO_ZEROES) == 0;
      assertThat(o.server().available()).isEqualTo(padded ? 124 : 0);
      assertThat(o.agreed().name()).isEqualTo("vm-1");
    }
  }

  @Test
  void whatHasNoSafeAnswerDropsTheConnection() {
    // An unknown export for EXPORT_NAME, which has no error reply.
    assertThatThrownBy(
            () -> run(client().option(OPT_EXPORT_NAME, "nope".getBytes(StandardCharsets.UTF_8))))
        .isInstanceOf(NbdProtocolException.class)
        .hasMessageContaining("unknown export");
    // Unknown client flags.
    assertThatThrownBy(() -> run(new Transcript().clientFlags(0x10)))
        .isInstanceOf(NbdProtocolException.class);
    // A wrong option magic.
    assertThatThrownBy(() -> run(client().raw(new byte[16])))
        .isInstanceOf(NbdProtocolException.class)
        .hasMessageContaining("IHAVEOPT");
    // Oversized option data: the length alone is enough, no data follows.
    assertThatThrownBy(
            () ->
                run(
                    client()
                        .raw(
                            Transcript.build(
                                d -> {
                                  d.writeLong(IHAVEOPT);
                                  d.writeInt(OPT_GO);
                                  d.writeInt(64 * 1024 + 1);
                                }))))
        .isInstanceOf(NbdProtocolException.class)
        .hasMessageContaining("over the limit");
    // Too many options.
    Transcript many = client();
    for (int i = 0; i <= NbdLimits.DEFAULTS.maxOptions(); i++) {
      many.option(99, new byte[0]);
    }
    assertThatThrownBy(() -> run(many))
        .isInstanceOf(NbdProtocolException.class)
        .hasMessageContaining("more than " + NbdLimits.DEFAULTS.maxOptions() + " options");
    // A client without fixed newstyle may only use EXPORT_NAME.
    assertThatThrownBy(
            () ->
                run(
                    new Transcript()
                        .clientFlags(0)
                        .option(OPT_GO, Transcript.exportRequest("vm-1"))))
        .isInstanceOf(NbdProtocolException.class);
    // The connection ends in the middle of an option.
    assertThatThrownBy(
            () ->
                run(
                    client()
                        .raw(
                            Transcript.build(
                                d -> {
                                  d.writeLong(IHAVEOPT);
                                  d.writeInt(OPT_GO);
                                  d.writeInt(100);
                                  d.write(new byte[10]);
                                }))))
        .isInstanceOf(NbdProtocolException.class);
  }

  @Test
  void aStoppingServerAnswersShutdownToEveryOptionButAbort() throws IOException {
    stopping = true;
    Outcome o =
        run(
            client()
                .option(OPT_GO, Transcript.exportRequest("vm-1"))
                .option(OPT_ABORT, new byte[0]));
    assertThat(Transcript.optionReply(o.server()).type()).isEqualTo(REP_ERR_SHUTDOWN);
    assertThat(Transcript.optionReply(o.server()).type()).isEqualTo(REP_ACK);
    assertThat(attached).isEmpty();
  }

  @Test
  void limitsAreTheConfiguredOnes() {
    limits =
        new NbdLimits(
            1, 1, Duration.ofSeconds(1), 2, 100, 1 << 20, 4, 1 << 20, Duration.ofSeconds(1));
    assertThatThrownBy(
            () ->
                run(
                    client()
                        .option(99, new byte[0])
                        .option(99, new byte[0])
                        .option(99, new byte[0])))
        .hasMessageContaining("more than 2 options");
    assertThatThrownBy(() -> run(client().option(99, new byte[101])))
        .hasMessageContaining("over the limit of 100");
  }
}
