package dev.fvdisk.nbd;

import static dev.fvdisk.nbd.Nbd.*;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.Closeable;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.Socket;

/**
 * A small NBD client over a real socket for the tests: negotiates structured replies and
 * base:allocation with GO, then sends requests and reads replies one at a time, so tests can
 * pipeline and see replies in the order the server sends them.
 */
final class NbdTestClient implements Closeable {

  final Socket socket;
  final DataInputStream in;
  final DataOutputStream out;
  long sizeBytes;
  int transmissionFlags;

  private NbdTestClient(Socket socket) throws IOException {
    this.socket = socket;
    this.socket.setTcpNoDelay(true);
    this.in = new DataInputStream(new BufferedInputStream(socket.getInputStream()));
    this.out = new DataOutputStream(new BufferedOutputStream(socket.getOutputStream()));
  }

  /** Connects and reads the greeting, without choosing an export. */
  static NbdTestClient greeted(int port) throws IOException {
    NbdTestClient c = new NbdTestClient(new Socket("127.0.0.1", port));
    if (c.in.readLong() != NBDMAGIC || c.in.readLong() != IHAVEOPT) {
      throw new IOException("not an NBD server");
    }
    c.in.readUnsignedShort();
    c.out.writeInt(CLIENT_FIXED_NEWSTYLE | CLIENT_NO_ZEROES);
    c.out.flush();
    return c;
  }

  /** Connects to {@code export} with structured replies and base:allocation. */
  static NbdTestClient open(int port, String export) throws IOException {
    NbdTestClient c = greeted(port);
    c.option(OPT_STRUCTURED_REPLY, new byte[0]);
    expect(c.optionReply(), REP_ACK);
    c.option(OPT_SET_META_CONTEXT, Transcript.metaRequest(export, BASE_ALLOCATION));
    expect(c.optionReply(), REP_META_CONTEXT);
    expect(c.optionReply(), REP_ACK);
    c.option(OPT_GO, Transcript.exportRequest(export));
    while (true) {
      Transcript.OptionReply r = c.optionReply();
      if (r.type() == REP_ACK) {
        return c;
      }
      expect(r, REP_INFO);
      java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(r.data());
      if (b.getShort() == INFO_EXPORT) {
        c.sizeBytes = b.getLong();
        c.transmissionFlags = Short.toUnsignedInt(b.getShort());
      }
    }
  }

  private static void expect(Transcript.OptionReply r, int type) throws IOException {
    if (r.type() != type) {
      throw new IOException(
          "option " + r.option() + " answered " + Integer.toHexString(r.type()) + ": " + r.text());
    }
  }

  void option(int option, byte[] data) throws IOException {
    out.writeLong(IHAVEOPT);
    out.writeInt(option);
    out.writeInt(data.length);
    out.write(data);
    out.flush();
  }

  Transcript.OptionReply optionReply() throws IOException {
    return Transcript.optionReply(in);
  }

  /** Sends a request; {@code payload} for writes. Not flushed, so several can go out at once. */
  void send(int flags, int type, long cookie, long offset, long length, byte[] payload)
      throws IOException {
    out.writeInt(REQUEST_MAGIC);
    out.writeShort(flags);
    out.writeShort(type);
    out.writeLong(cookie);
    out.writeLong(offset);
    out.writeInt((int) length);
    if (payload != null) {
      out.write(payload);
    }
  }

  void flushOut() throws IOException {
    out.flush();
  }

  /** The next reply; structured replies are negotiated, so reads come as one data chunk. */
  Transcript.Reply reply() throws IOException {
    return Transcript.reply(in, 0);
  }

  @Override
  public void close() throws IOException {
    socket.close();
  }
}
