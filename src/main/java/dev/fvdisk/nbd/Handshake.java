package dev.fvdisk.nbd;

import static dev.fvdisk.nbd.Nbd.*;

import dev.fvdisk.service.ServiceException;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BooleanSupplier;
import org.jspecify.annotations.Nullable;

/**
 * The fixed-newstyle handshake of one connection: the greeting, the client's flags, then options
 * until the client picks an export ({@code NBD_OPT_GO} or {@code NBD_OPT_EXPORT_NAME}) or leaves.
 *
 * <p>Every option gets its answer and the stream stays in step: option data is read whole (it is at
 * most {@link NbdLimits#maxOptionBytes()}), so an unknown or malformed option is answered with an
 * error and the next one parsed. Only what leaves no safe answer drops the connection ({@link
 * NbdProtocolException}): a wrong magic, unknown client flags, oversized option data, too many
 * options, and {@code NBD_OPT_EXPORT_NAME} of an unknown export (that option has no error reply).
 */
final class Handshake {

  /**
   * What the handshake agreed on.
   *
   * @param name the export's name
   * @param export the attached export; the session closes it
   * @param structuredReplies whether {@code NBD_OPT_STRUCTURED_REPLY} was negotiated
   * @param baseAllocation whether {@code base:allocation} was selected for this export
   * @param transmissionFlags the flags the client was sent
   * @param in the stream to read requests from (over TLS when it was negotiated)
   * @param out the stream to write replies to
   */
  record Agreed(
      String name,
      Exports.Export export,
      boolean structuredReplies,
      boolean baseAllocation,
      int transmissionFlags,
      DataInputStream in,
      DataOutputStream out) {}

  /** The longest name or query string taken, in bytes (the protocol's own limit). */
  static final int MAX_STRING_BYTES = 4096;

  /** Block sizes offered: any alignment, 4 KiB preferred. */
  static final int MIN_BLOCK = 1;

  static final int PREFERRED_BLOCK = 4096;

  /**
   * Upgrades the connection to TLS after {@code NBD_OPT_STARTTLS} was acknowledged: runs the TLS
   * handshake and learns who the client is.
   */
  interface TlsUpgrade {
    /**
     * @return the streams over TLS, and the exports of the client the certificate names
     * @throws NbdProtocolException when the client may not use the server; the caller disconnects
     */
    Upgraded upgrade() throws IOException;
  }

  /** The connection after the TLS handshake. */
  record Upgraded(DataInputStream in, DataOutputStream out, Exports exports) {}

  private DataInputStream in;
  private DataOutputStream out;
  private Exports exports;
  private final NbdLimits limits;
  private final BooleanSupplier stopping;
  // Null: plaintext only. Otherwise TLS is required before anything but STARTTLS and ABORT.
  private final @Nullable TlsUpgrade tls;
  private boolean secured;

  private boolean noZeroes;
  private boolean structuredReplies;
  // The export base:allocation was selected for by the last SET_META_CONTEXT, or null.
  private @Nullable String metaContextExport;
  private int options;
  private Runnable onOptionAnswered = () -> {};

  Handshake(
      DataInputStream in,
      DataOutputStream out,
      Exports exports,
      NbdLimits limits,
      BooleanSupplier stopping,
      @Nullable TlsUpgrade tls) {
    this.in = in;
    this.out = out;
    this.exports = exports;
    this.limits = limits;
    this.stopping = stopping;
    this.tls = tls;
  }

  /**
   * Calls {@code action} after each option is answered, as the connection's deadline for the next
   * one starts then.
   */
  Handshake onOptionAnswered(Runnable action) {
    this.onOptionAnswered = action;
    return this;
  }

  /** Whether the connection runs over TLS now. */
  boolean secured() {
    return secured;
  }

  /**
   * Runs the handshake.
   *
   * @return what was agreed, or null when the client aborted
   * @throws NbdProtocolException when the client broke the protocol; the caller disconnects
   * @throws IOException when the connection failed
   */
  @Nullable Agreed run() throws IOException {
    out.writeLong(NBDMAGIC);
    out.writeLong(IHAVEOPT);
    out.writeShort(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES);
    out.flush();
    int clientFlags = in.readInt();
    if ((clientFlags & ~(CLIENT_FIXED_NEWSTYLE | CLIENT_NO_ZEROES)) != 0) {
      throw new NbdProtocolException(
          "unknown client flags 0x" + Integer.toHexString(clientFlags) + " in the handshake");
    }
    boolean fixedNewstyle = (clientFlags & CLIENT_FIXED_NEWSTYLE) != 0;
    noZeroes = (clientFlags & CLIENT_NO_ZEROES) != 0;
    while (true) {
      long magic = in.readLong();
      if (magic != IHAVEOPT) {
        throw new NbdProtocolException("an option did not start with IHAVEOPT");
      }
      int option = in.readInt();
      long length = Integer.toUnsignedLong(in.readInt());
      if (length > limits.maxOptionBytes()) {
        throw new NbdProtocolException(
            "option "
                + option
                + " carries "
                + length
                + " bytes, over the limit of "
                + limits.maxOptionBytes());
      }
      if (++options > limits.maxOptions()) {
        throw new NbdProtocolException("more than " + limits.maxOptions() + " options");
      }
      byte[] data = in.readNBytes((int) length);
      if (data.length != length) {
        throw new NbdProtocolException("the connection ended inside option " + option);
      }
      if (!fixedNewstyle && option != OPT_EXPORT_NAME) {
        // A client without fixed newstyle cannot parse option replies; only EXPORT_NAME is safe.
        throw new NbdProtocolException("a client without fixed newstyle sent option " + option);
      }
      Agreed agreed = answer(option, ByteBuffer.wrap(data));
      if (agreed != null) {
        return agreed;
      }
      if (option == OPT_ABORT) {
        return null;
      }
      onOptionAnswered.run();
    }
  }

  /** Answers one option; returns what was agreed when the option ends the handshake. */
  private @Nullable Agreed answer(int option, ByteBuffer data) throws IOException {
    if (stopping.getAsBoolean() && option != OPT_ABORT) {
      if (option == OPT_EXPORT_NAME) {
        throw new NbdProtocolException("the server is shutting down");
      }
      error(option, REP_ERR_SHUTDOWN, "the server is shutting down");
      return null;
    }
    if (tls != null && !secured && option != OPT_STARTTLS && option != OPT_ABORT) {
      if (option == OPT_EXPORT_NAME) {
        throw new NbdProtocolException("EXPORT_NAME in plaintext on a server that requires TLS");
      }
      error(option, REP_ERR_TLS_REQD, "this server requires TLS: send STARTTLS first");
      return null;
    }
    switch (option) {
      case OPT_EXPORT_NAME -> {
        return exportName(data);
      }
      case OPT_ABORT -> {
        try {
          reply(option, REP_ACK, new byte[0]);
        } catch (IOException e) {
          // The client may close without reading the acknowledgement; that is fine.
        }
        return null;
      }
      case OPT_LIST -> list(data);
      case OPT_STARTTLS -> startTls(data);
      case OPT_INFO, OPT_GO -> {
        return infoOrGo(option, data);
      }
      case OPT_STRUCTURED_REPLY -> {
        if (data.hasRemaining()) {
          error(option, REP_ERR_INVALID, "STRUCTURED_REPLY takes no data");
        } else {
          structuredReplies = true;
          reply(option, REP_ACK, new byte[0]);
        }
      }
      case OPT_LIST_META_CONTEXT, OPT_SET_META_CONTEXT -> metaContext(option, data);
      default -> error(option, REP_ERR_UNSUP, "option " + option + " is not supported");
    }
    return null;
  }

  private Agreed exportName(ByteBuffer data) throws IOException {
    String name = string(data, data.remaining());
    if (name == null) {
      throw new NbdProtocolException("EXPORT_NAME with a name that is not UTF-8 text");
    }
    Exports.Export export;
    try {
      export = exports.attach(name, true);
    } catch (ServiceException e) {
      throw new NbdProtocolException("EXPORT_NAME of \"" + clip(name) + "\": " + e.getMessage());
    }
    if (export == null) {
      // EXPORT_NAME has no error reply: the protocol's answer is to disconnect.
      throw new NbdProtocolException("EXPORT_NAME of an unknown export \"" + name + "\"");
    }
    try {
      int flags = transmissionFlags(export);
      out.writeLong(export.disk().sizeBytes());
      out.writeShort(flags);
      if (!noZeroes) {
        out.write(new byte[124]);
      }
      out.flush();
      // Meta contexts are negotiated for GO only.
      return new Agreed(name, export, structuredReplies, false, flags, in, out);
    } catch (IOException | RuntimeException e) {
      export.disk().close();
      throw e;
    }
  }

  private void startTls(ByteBuffer data) throws IOException {
    if (tls == null) {
      error(OPT_STARTTLS, REP_ERR_POLICY, "TLS is not configured on this server");
    } else if (secured) {
      error(OPT_STARTTLS, REP_ERR_INVALID, "TLS is already on");
    } else if (data.hasRemaining()) {
      error(OPT_STARTTLS, REP_ERR_INVALID, "STARTTLS takes no data");
    } else {
      reply(OPT_STARTTLS, REP_ACK, new byte[0]);
      Upgraded upgraded = tls.upgrade();
      in = upgraded.in();
      out = upgraded.out();
      exports = upgraded.exports();
      secured = true;
      // What was negotiated in plaintext does not carry over (the protocol's rule).
      structuredReplies = false;
      metaContextExport = null;
    }
  }

  private void list(ByteBuffer data) throws IOException {
    if (data.hasRemaining()) {
      error(OPT_LIST, REP_ERR_INVALID, "LIST takes no data");
      return;
    }
    for (String name : exports.names()) {
      byte[] bytes = name.getBytes(StandardCharsets.UTF_8);
      ByteBuffer server = ByteBuffer.allocate(4 + bytes.length);
      server.putInt(bytes.length).put(bytes);
      reply(OPT_LIST, REP_SERVER, server.array());
    }
    reply(OPT_LIST, REP_ACK, new byte[0]);
  }

  private @Nullable Agreed infoOrGo(int option, ByteBuffer data) throws IOException {
    if (data.remaining() < 6) {
      error(option, REP_ERR_INVALID, "the option's data is too short");
      return null;
    }
    long nameLength = Integer.toUnsignedLong(data.getInt());
    if (nameLength > data.remaining() - 2) {
      error(option, REP_ERR_INVALID, "the export name runs past the option's data");
      return null;
    }
    String name = string(data, (int) nameLength);
    int requests = Short.toUnsignedInt(data.getShort());
    if (data.remaining() != 2L * requests) {
      error(option, REP_ERR_INVALID, "the number of information requests does not match");
      return null;
    }
    if (name == null) {
      error(option, REP_ERR_INVALID, "the export name is not UTF-8 text without NUL");
      return null;
    }
    boolean wantsName = false;
    boolean wantsDescription = false;
    for (int i = 0; i < requests; i++) {
      int item = Short.toUnsignedInt(data.getShort());
      wantsName |= item == INFO_NAME;
      wantsDescription |= item == INFO_DESCRIPTION;
    }
    boolean go = option == OPT_GO;
    Exports.Export export;
    try {
      export = exports.attach(name, go);
    } catch (ServiceException e) {
      error(option, REP_ERR_UNKNOWN, clip(e.getMessage()));
      return null;
    }
    if (export == null) {
      error(option, REP_ERR_UNKNOWN, "no export named \"" + clip(name) + "\"");
      return null;
    }
    boolean handedOver = false;
    try {
      if (!name.equals(metaContextExport)) {
        metaContextExport = null; // selected for another export: GO drops it, as nbdkit does
      }
      int flags = transmissionFlags(export);
      ByteBuffer info = ByteBuffer.allocate(12);
      info.putShort((short) INFO_EXPORT).putLong(export.disk().sizeBytes()).putShort((short) flags);
      reply(option, REP_INFO, info.array());
      ByteBuffer sizes = ByteBuffer.allocate(14);
      sizes.putShort((short) INFO_BLOCK_SIZE);
      sizes.putInt(MIN_BLOCK).putInt(PREFERRED_BLOCK).putInt(limits.maxPayloadBytes());
      reply(option, REP_INFO, sizes.array());
      if (wantsName) {
        reply(option, REP_INFO, infoString(INFO_NAME, name));
      }
      if (wantsDescription) {
        reply(option, REP_INFO, infoString(INFO_DESCRIPTION, export.description()));
      }
      reply(option, REP_ACK, new byte[0]);
      if (!go) {
        return null;
      }
      handedOver = true;
      return new Agreed(name, export, structuredReplies, metaContextExport != null, flags, in, out);
    } finally {
      if (!handedOver) {
        export.disk().close();
      }
    }
  }

  private void metaContext(int option, ByteBuffer data) throws IOException {
    boolean set = option == OPT_SET_META_CONTEXT;
    if (set && !structuredReplies) {
      error(option, REP_ERR_INVALID, "SET_META_CONTEXT needs STRUCTURED_REPLY first");
      return;
    }
    if (data.remaining() < 8) {
      error(option, REP_ERR_INVALID, "the option's data is too short");
      return;
    }
    long nameLength = Integer.toUnsignedLong(data.getInt());
    if (nameLength > data.remaining() - 4) {
      error(option, REP_ERR_INVALID, "the export name runs past the option's data");
      return;
    }
    String name = string(data, (int) nameLength);
    long queries = Integer.toUnsignedLong(data.getInt());
    List<String> asked = new ArrayList<>();
    for (long i = 0; i < queries; i++) {
      if (data.remaining() < 4) {
        error(option, REP_ERR_INVALID, "a query runs past the option's data");
        return;
      }
      long length = Integer.toUnsignedLong(data.getInt());
      if (length > data.remaining()) {
        error(option, REP_ERR_INVALID, "a query runs past the option's data");
        return;
      }
      String query = string(data, (int) length);
      if (query == null) {
        error(option, REP_ERR_INVALID, "a query is not UTF-8 text without NUL");
        return;
      }
      asked.add(query);
    }
    if (data.hasRemaining()) {
      error(option, REP_ERR_INVALID, "the option carries bytes after its queries");
      return;
    }
    if (name == null) {
      error(option, REP_ERR_INVALID, "the export name is not UTF-8 text without NUL");
      return;
    }
    Exports.Export export;
    try {
      export = exports.attach(name, false);
    } catch (ServiceException e) {
      error(option, REP_ERR_UNKNOWN, clip(e.getMessage()));
      return;
    }
    if (export == null) {
      error(option, REP_ERR_UNKNOWN, "no export named \"" + clip(name) + "\"");
      return;
    }
    export.disk().close();
    // An empty list asks what there is when listing, and selects nothing when setting.
    boolean matches =
        asked.isEmpty()
            ? !set
            : asked.stream().anyMatch(q -> q.equals("base:") || q.equals(BASE_ALLOCATION));
    if (set) {
      metaContextExport = matches ? name : null;
    }
    if (matches) {
      byte[] context = BASE_ALLOCATION.getBytes(StandardCharsets.US_ASCII);
      ByteBuffer reply = ByteBuffer.allocate(4 + context.length);
      reply.putInt(BASE_ALLOCATION_ID).put(context);
      reply(option, REP_META_CONTEXT, reply.array());
    }
    reply(option, REP_ACK, new byte[0]);
  }

  /** The transmission flags of an export on this connection; INFO and GO give the same. */
  private int transmissionFlags(Exports.Export export) {
    int flags =
        TF_HAS_FLAGS
            | TF_SEND_FLUSH
            | TF_SEND_FUA
            | TF_SEND_TRIM
            | TF_SEND_WRITE_ZEROES
            | TF_CAN_MULTI_CONN;
    if (structuredReplies) {
      flags |= TF_SEND_DF;
    }
    if (export.readOnly()) {
      flags |= TF_READ_ONLY;
    }
    return flags;
  }

  private static byte[] infoString(int type, String value) {
    byte[] bytes = value.getBytes(StandardCharsets.UTF_8);
    int length = Math.min(bytes.length, MAX_STRING_BYTES);
    ByteBuffer info = ByteBuffer.allocate(2 + length);
    info.putShort((short) type).put(bytes, 0, length);
    return info.array();
  }

  /**
   * Takes {@code length} bytes as a string of the protocol: UTF-8, no NUL, at most {@link
   * #MAX_STRING_BYTES}. Consumes the bytes either way.
   *
   * @return the string, or null when it is none of those
   */
  private static @Nullable String string(ByteBuffer data, int length) {
    ByteBuffer bytes = data.slice(data.position(), length);
    data.position(data.position() + length);
    if (length > MAX_STRING_BYTES) {
      return null;
    }
    try {
      String s =
          StandardCharsets.UTF_8
              .newDecoder()
              .onMalformedInput(CodingErrorAction.REPORT)
              .onUnmappableCharacter(CodingErrorAction.REPORT)
              .decode(bytes)
              .toString();
      return s.indexOf('\0') >= 0 ? null : s;
    } catch (CharacterCodingException e) {
      return null;
    }
  }

  /**
   * Keeps error messages short: QEMU drops a connection on any chunk other than data above 1000
   * bytes, and a message echoes a name of up to 4096 bytes.
   */
  static String clip(String s) {
    return s.length() <= 64 ? s : s.substring(0, 64) + "...";
  }

  private void error(int option, int type, String message) throws IOException {
    reply(option, type, message.getBytes(StandardCharsets.UTF_8));
  }

  private void reply(int option, int type, byte[] data) throws IOException {
    out.writeLong(OPTION_REPLY_MAGIC);
    out.writeInt(option);
    out.writeInt(type);
    out.writeInt(data.length);
    out.write(data);
    out.flush();
  }
}
