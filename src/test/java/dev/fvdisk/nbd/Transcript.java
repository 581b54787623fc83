package dev.fvdisk.nbd;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;

/**
 * Bytes a client sends, written the way the protocol lays them out, and a reader for what the
 * server answered: the codec's tests are transcripts, no socket involved.
 */
final class Transcript {

  private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
  private final DataOutputStream out = new DataOutputStream(bytes);

  /** The client's flags after the greeting. */
  Transcript clientFlags(int flags) {
    return run(() -> out.writeInt(flags));
  }

  Transcript option(int option, byte[] data) {
    return run(
        () -> {
          out.writeLong(Nbd.IHAVEOPT);
          out.writeInt(option);
          out.writeInt(data.length);
          out.write(data);
        });
  }

  /** INFO or GO data: the name and the information requests. */
  static byte[] exportRequest(String name, int... infos) {
    return build(
        d -> {
          byte[] n = name.getBytes(StandardCharsets.UTF_8);
          d.writeInt(n.length);
          d.write(n);
          d.writeShort(infos.length);
          for (int info : infos) {
            d.writeShort(info);
          }
        });
  }

  /** LIST_META_CONTEXT or SET_META_CONTEXT data. */
  static byte[] metaRequest(String name, String... queries) {
    return build(
        d -> {
          byte[] n = name.getBytes(StandardCharsets.UTF_8);
          d.writeInt(n.length);
          d.write(n);
          d.writeInt(queries.length);
          for (String q : queries) {
            byte[] b = q.getBytes(StandardCharsets.UTF_8);
            d.writeInt(b.length);
            d.write(b);
          }
        });
  }

  Transcript request(int flags, int type, long cookie, long offset, long length) {
    return run(
        () -> {
          out.writeInt(Nbd.REQUEST_MAGIC);
          out.writeShort(flags);
          out.writeShort(type);
          out.writeLong(cookie);
          out.writeLong(offset);
          out.writeInt((int) length);
        });
  }

  Transcript raw(byte[] data) {
    return run(() -> out.write(data));
  }

  DataInputStream input() {
    return new DataInputStream(new ByteArrayInputStream(bytes.toByteArray()));
  }

  interface Writes {
    void to(DataOutputStream out) throws IOException;
  }

  static byte[] build(Writes writes) {
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    try {
      writes.to(new DataOutputStream(b));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return b.toByteArray();
  }

  private Transcript run(IoRunnable r) {
    try {
      r.run();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return this;
  }

  private interface IoRunnable {
    void run() throws IOException;
  }

  /** One option reply as the server sent it. */
  record OptionReply(int option, int type, byte[] data) {
    String text() {
      return new String(data, StandardCharsets.UTF_8);
    }
  }

  static OptionReply optionReply(DataInputStream in) throws IOException {
    long magic = in.readLong();
    if (magic != Nbd.OPTION_REPLY_MAGIC) {
      throw new AssertionError("not an option reply: 0x" + Long.toHexString(magic));
    }
    int option = in.readInt();
    int type = in.readInt();
    byte[] data = in.readNBytes(in.readInt());
    return new OptionReply(option, type, data);
  }

  /** A reply in transmission: simple, or one structured chunk. */
  record Reply(boolean structured, int flags, int type, int error, long cookie, byte[] payload) {}

  /** Reads one reply; a simple reply to a read carries {@code readLength} bytes of data. */
  static Reply reply(DataInputStream in, int readLength) throws IOException {
    int magic = in.readInt();
    if (magic == Nbd.SIMPLE_REPLY_MAGIC) {
      int error = in.readInt();
      long cookie = in.readLong();
      byte[] data = error == 0 ? in.readNBytes(readLength) : new byte[0];
      return new Reply(false, 0, 0, error, cookie, data);
    }
    if (magic == Nbd.STRUCTURED_REPLY_MAGIC) {
      int flags = in.readUnsignedShort();
      int type = in.readUnsignedShort();
      long cookie = in.readLong();
      byte[] payload = in.readNBytes(in.readInt());
      int error = (type & 0x8000) != 0 ? java.nio.ByteBuffer.wrap(payload).getInt() : 0;
      return new Reply(true, flags, type, error, cookie, payload);
    }
    throw new AssertionError("not a reply: 0x" + Integer.toHexString(magic));
  }
}
