package dev.fvdisk.bench;

import java.io.BufferedInputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * A minimal blocking NBD client for the harness: one connection, one request at a time. It speaks
 * the fixed newstyle handshake with {@code NBD_OPT_GO} and nothing else (no structured replies, no
 * TLS), so every server answers it with simple replies. All integers on the wire are big-endian,
 * which is what {@link DataInputStream} and {@link ByteBuffer} use by default.
 *
 * <p>The same client measures every contender, so its own cost per request is the same in every
 * column. Each request goes out in one {@code write} call (header and payload together) and the
 * socket has {@code TCP_NODELAY}, so the client never holds a request back.
 */
final class NbdClient implements AutoCloseable {

  private static final long NBDMAGIC = 0x4e42444d41474943L;
  private static final long IHAVEOPT = 0x49484156454f5054L;
  private static final long OPTION_REPLY_MAGIC = 0x0003e889045565a9L;
  private static final int REQUEST_MAGIC = 0x25609513;
  private static final int SIMPLE_REPLY_MAGIC = 0x67446698;

  private static final int FLAG_FIXED_NEWSTYLE = 1;
  private static final int FLAG_NO_ZEROES = 2;
  private static final int OPT_GO = 7;
  private static final int REP_ACK = 1;
  private static final int REP_INFO = 3;
  private static final int INFO_EXPORT = 0;
  private static final int REP_ERROR_BIT = 1 << 31;

  static final int CMD_READ = 0;
  static final int CMD_WRITE = 1;
  static final int CMD_DISC = 2;
  static final int CMD_FLUSH = 3;
  static final int CMD_FLAG_FUA = 1;

  private static final int HEADER_BYTES = 28;

  private final Socket socket;
  private final DataInputStream in;
  private final OutputStream out;
  private final long sizeBytes;
  private long nextCookie = 1;

  /** Header plus the largest payload written so far; grown on demand. */
  private byte[] requestBuffer = new byte[HEADER_BYTES];

  private NbdClient(Socket socket, DataInputStream in, OutputStream out, long sizeBytes) {
    this.socket = socket;
    this.in = in;
    this.out = out;
    this.sizeBytes = sizeBytes;
  }

  /** Connects to {@code 127.0.0.1:port} and opens {@code export} with {@code NBD_OPT_GO}. */
  static NbdClient connect(int port, String export) throws IOException {
    Socket socket = new Socket();
    try {
      socket.setTcpNoDelay(true);
      socket.connect(new InetSocketAddress("127.0.0.1", port), 10_000);
      socket.setSoTimeout(120_000);
      DataInputStream in =
          new DataInputStream(new BufferedInputStream(socket.getInputStream(), 1 << 16));
      OutputStream out = socket.getOutputStream();
      if (in.readLong() != NBDMAGIC || in.readLong() != IHAVEOPT) {
        throw new IOException("not a newstyle NBD server on port " + port);
      }
      int serverFlags = in.readUnsignedShort();
      if ((serverFlags & FLAG_FIXED_NEWSTYLE) == 0) {
        throw new IOException("the server on port " + port + " does not offer fixed newstyle");
      }
      // Only what the server offers; without NO_ZEROES an old-style export reply would follow
      // EXPORT_NAME, which this client never sends.
      int clientFlags = FLAG_FIXED_NEWSTYLE | (serverFlags & FLAG_NO_ZEROES);
      byte[] name = export.getBytes(StandardCharsets.UTF_8);
      ByteBuffer hello = ByteBuffer.allocate(4 + 8 + 4 + 4 + 4 + name.length + 2);
      hello.putInt(clientFlags);
      hello.putLong(IHAVEOPT).putInt(OPT_GO).putInt(4 + name.length + 2);
      hello.putInt(name.length).put(name).putShort((short) 0); // no information requests
      out.write(hello.array());
      out.flush();
      long size = -1;
      while (true) {
        if (in.readLong() != OPTION_REPLY_MAGIC) {
          throw new IOException("bad option reply magic from port " + port);
        }
        int option = in.readInt();
        int type = in.readInt();
        int length = in.readInt();
        if (option != OPT_GO || length < 0 || length > 1 << 20) {
          throw new IOException("unexpected option reply " + option + "/" + length);
        }
        byte[] data = in.readNBytes(length);
        if (data.length != length) {
          throw new EOFException("option reply cut short");
        }
        if ((type & REP_ERROR_BIT) != 0) {
          throw new IOException(
              "NBD_OPT_GO for '"
                  + export
                  + "' refused with reply type 0x"
                  + Integer.toHexString(type)
                  + ": "
                  + new String(data, StandardCharsets.UTF_8));
        }
        if (type == REP_INFO && length >= 12) {
          ByteBuffer info = ByteBuffer.wrap(data);
          if (info.getShort() == INFO_EXPORT) {
            size = info.getLong();
          }
        } else if (type == REP_ACK) {
          break;
        }
      }
      if (size < 0) {
        throw new IOException("the server did not send NBD_INFO_EXPORT for '" + export + "'");
      }
      return new NbdClient(socket, in, out, size);
    } catch (IOException | RuntimeException e) {
      socket.close();
      throw e;
    }
  }

  long sizeBytes() {
    return sizeBytes;
  }

  /** Reads {@code into.length} bytes at {@code offsetBytes}. */
  void read(long offsetBytes, byte[] into) throws IOException {
    long cookie = send(CMD_READ, 0, offsetBytes, into.length, null);
    receive(cookie, into);
  }

  /** Writes {@code data}; with {@code fua} the reply waits until it is on stable storage. */
  void write(long offsetBytes, byte[] data, boolean fua) throws IOException {
    long cookie = send(CMD_WRITE, fua ? CMD_FLAG_FUA : 0, offsetBytes, data.length, data);
    receive(cookie, null);
  }

  void flush() throws IOException {
    long cookie = send(CMD_FLUSH, 0, 0, 0, null);
    receive(cookie, null);
  }

  private long send(int type, int flags, long offsetBytes, int length, byte[] payload)
      throws IOException {
    int total = HEADER_BYTES + (payload == null ? 0 : payload.length);
    if (requestBuffer.length < total) {
      requestBuffer = new byte[total];
    }
    long cookie = nextCookie++;
    ByteBuffer header = ByteBuffer.wrap(requestBuffer, 0, HEADER_BYTES);
    header.putInt(REQUEST_MAGIC).putShort((short) flags).putShort((short) type);
    header.putLong(cookie).putLong(offsetBytes).putInt(length);
    if (payload != null) {
      System.arraycopy(payload, 0, requestBuffer, HEADER_BYTES, payload.length);
    }
    out.write(requestBuffer, 0, total);
    return cookie;
  }

  private void receive(long cookie, byte[] data) throws IOException {
    int magic = in.readInt();
    if (magic != SIMPLE_REPLY_MAGIC) {
      throw new IOException("not a simple reply: magic 0x" + Integer.toHexString(magic));
    }
    int error = in.readInt();
    long answered = in.readLong();
    if (answered != cookie) {
      throw new IOException("reply for cookie " + answered + ", expected " + cookie);
    }
    if (error != 0) {
      throw new IOException("the server answered errno " + error);
    }
    if (data != null) {
      in.readFully(data);
    }
  }

  /** Sends {@code NBD_CMD_DISC} (which has no reply) and closes the socket. */
  @Override
  public void close() throws IOException {
    try {
      send(CMD_DISC, 0, 0, 0, null);
      out.flush();
    } catch (IOException ignored) {
      // The connection is going away either way.
    } finally {
      socket.close();
    }
  }
}
