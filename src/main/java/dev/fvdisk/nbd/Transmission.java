package dev.fvdisk.nbd;

import static dev.fvdisk.nbd.Nbd.*;

import dev.fvdisk.service.DiskExtent;
import dev.fvdisk.service.Durability;
import dev.fvdisk.service.ImageReadOnlyException;
import dev.fvdisk.service.InsufficientStorageException;
import dev.fvdisk.service.RangeOutsideDiskException;
import dev.fvdisk.service.ServiceException;
import dev.fvdisk.service.VirtualDisk;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.Executor;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The transmission phase of one connection: requests in, replies out, in completion order.
 *
 * <p>The connection's thread reads each request header, checks it, takes the request's share of the
 * in-flight limits (which is how a client that sends faster than the disk answers is slowed down:
 * its next request is not read), reads a write's payload, and hands the request to the worker pool.
 * Small reads and write-back writes it serves itself ({@link #servesInline}): handing a 4 KiB read
 * to a worker cost more CPU than the read. Workers call the {@link VirtualDisk} and queue the
 * reply; one writer thread per connection sends the replies in the order they were queued, flushing
 * the socket whenever the queue runs empty, and only then gives the request's share back. So
 * workers never wait for a slow client, and a client that stops reading holds no more than its own
 * limits, until the watchdog ({@link #stalledNanos}) drops it. A read is read into memory before
 * its reply is queued, so a failure is always reported as an error rather than by dropping the
 * connection. Data moves through pooled direct buffers ({@link PayloadBuffers}): from the socket to
 * the file and back without a copy on the heap.
 *
 * <p>A write is answered once the disk has it, so it is visible to every connection and to HTTP,
 * and covered by the next flush on any of them: that is why {@code CAN_MULTI_CONN} is true.
 */
final class Transmission {

  private static final Logger log = LoggerFactory.getLogger(Transmission.class);

  /** Most extents in one block-status reply without {@code REQ_ONE}. */
  static final int MAX_EXTENTS = 1024;

  /** Largest read or write-back write the connection's thread serves itself. */
  static final int INLINE_MAX_BYTES = 64 << 10;

  /**
   * A request served on the connection's thread that took longer than this waited for the device or
   * for a lock (a page-cache miss, copy-on-read, a chunk allocation), so requests waiting behind it
   * would have been served faster in parallel.
   */
  static final long SLOW_INLINE_NANOS = TimeUnit.MICROSECONDS.toNanos(200);

  /** How many small requests go to the workers after a slow one, before serving inline again. */
  static final int HANDED_OFF_AFTER_SLOW = 64;

  /** Longest message in an error chunk; QEMU drops chunks over 1000 bytes. */
  private static final int MAX_MESSAGE_BYTES = 200;

  private final RequestInput in;
  private final ReplyOutput out;
  private final Handshake.Agreed agreed;
  private final VirtualDisk disk;
  private final NbdLimits limits;
  private final Semaphore serverBytes;
  private final PayloadBuffers buffers;
  private final Executor workers;
  private final NbdObserver observer;
  private final BooleanSupplier stopping;
  private final Runnable onReplyFailure;

  private final Semaphore requests;
  // Replies on their way out, written by one thread per connection in the order they were queued.
  private final BlockingQueue<Outgoing> outgoing = new LinkedBlockingQueue<>();
  // When the reply being written, or the payload being read, began (System.nanoTime, never 0);
  // 0 while neither happens. What the connection's watchdog looks at.
  private volatile long writingSince;
  private volatile long readingPayloadSince;
  private volatile boolean broken;
  // Small requests still to hand to the workers since the last slow inline one; reader thread only.
  private int handOffsLeft;
  // SLOW_INLINE_NANOS, but for tests that must not see a slow request where the machine was slow.
  long slowInlineNanos = SLOW_INLINE_NANOS;
  private final AtomicLong served = new AtomicLong();
  private final AtomicLong failed = new AtomicLong();
  private final AtomicLong bytesRead = new AtomicLong();
  private final AtomicLong bytesWritten = new AtomicLong();

  /** How a reply is written: its header and payload, without flushing. */
  @FunctionalInterface
  private interface ReplyBody {
    void writeTo(ReplyOutput out) throws IOException;
  }

  /**
   * A reply queued for the writer, with the request's share of the limits it gives back once
   * written, and the buffer its data lies in; the request stays in flight until then, so a client
   * that does not read its replies cannot make the server hold more than its limits.
   */
  private record Outgoing(ReplyBody body, int heldBytes, @Nullable ByteBuffer buffer) {}

  /** Queued after the last reply: the writer stops. */
  private static final Outgoing END = new Outgoing(out -> {}, 0, null);

  /** One request, its header checked. */
  private record Request(int flags, int type, long cookie, long offset, long length) {
    boolean fua() {
      return (flags & CMD_FLAG_FUA) != 0;
    }

    Durability durability() {
      return fua() ? Durability.DURABLE : Durability.BUFFERED;
    }
  }

  /**
   * @param input the client's requests, from the first byte after the handshake
   * @param output where replies go; the handshake's own stream must have been flushed
   */
  Transmission(
      Handshake.Agreed agreed,
      ReadableByteChannel input,
      WritableByteChannel output,
      NbdLimits limits,
      Semaphore serverBytes,
      PayloadBuffers buffers,
      Executor workers,
      NbdObserver observer,
      BooleanSupplier stopping,
      Runnable onReplyFailure) {
    // The handshake read without buffering (see NbdConnection); requests are read in bulk.
    this.in = new RequestInput(input);
    this.out = new ReplyOutput(output);
    this.agreed = agreed;
    this.disk = agreed.export().disk();
    this.limits = limits;
    this.serverBytes = serverBytes;
    this.buffers = buffers;
    this.workers = workers;
    this.observer = observer;
    this.stopping = stopping;
    this.onReplyFailure = onReplyFailure;
    this.requests = new Semaphore(limits.maxInFlightRequests());
  }

  /**
   * Serves requests until the client disconnects, then waits for the requests in progress.
   *
   * @return how the session ended, for the connection's log line
   * @throws NbdProtocolException when the client broke the protocol
   * @throws IOException when the connection failed
   */
  String run() throws IOException, InterruptedException {
    Thread writer = new Thread(this::writeReplies, Thread.currentThread().getName() + "-replies");
    writer.setDaemon(true);
    writer.start();
    try {
      while (true) {
        if (!in.require(REQUEST_HEADER_BYTES)) {
          return "the client closed the connection";
        }
        ByteBuffer header = in.buffered();
        int magic = header.getInt();
        if (magic != REQUEST_MAGIC) {
          throw new NbdProtocolException(
              "a request started with 0x" + Integer.toHexString(magic) + ", not the request magic");
        }
        Request r =
            new Request(
                Short.toUnsignedInt(header.getShort()),
                Short.toUnsignedInt(header.getShort()),
                header.getLong(),
                header.getLong(),
                Integer.toUnsignedLong(header.getInt()));
        if (r.type() == CMD_DISC) {
          return "the client disconnected";
        }
        accept(r);
      }
    } finally {
      // Every request read is answered (or its reply dropped, if the connection broke) before
      // the session ends.
      awaitIdle(Long.MAX_VALUE);
      outgoing.add(END);
      writer.join();
    }
  }

  /** The writer's loop: replies in queue order; one flush whenever the queue runs empty. */
  private void writeReplies() {
    while (true) {
      Outgoing next;
      try {
        next = outgoing.take();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
      if (next == END) {
        return;
      }
      try {
        if (!broken) {
          writingSince = System.nanoTime() | 1;
          next.body().writeTo(out);
          if (outgoing.isEmpty()) {
            out.flush();
          }
        }
      } catch (IOException | RuntimeException e) {
        // The connection broke; the reading side sees it too. Later replies are dropped, but
        // their requests still end, so the session can.
        broken = true;
        onReplyFailure.run();
      } finally {
        writingSince = 0;
        if (next.buffer() != null) {
          buffers.release(next.buffer());
        }
        serverBytes.release(next.heldBytes());
        requests.release();
      }
    }
  }

  /** Queues a reply; its request ends when it is written, and then its buffer is given back. */
  private void send(int heldBytes, ReplyBody body, @Nullable ByteBuffer buffer) {
    outgoing.add(new Outgoing(body, heldBytes, buffer));
  }

  /**
   * How long the connection has been stuck: writing a reply the client does not read, or reading a
   * write's payload the client does not send; 0 when it is not.
   */
  long stalledNanos() {
    long now = System.nanoTime();
    long writing = writingSince;
    long reading = readingPayloadSince;
    return Math.max(writing == 0 ? 0 : now - writing, reading == 0 ? 0 : now - reading);
  }

  /** Takes one request off the wire and hands it on, or answers it at once when it is refused. */
  private void accept(Request r) throws IOException, InterruptedException {
    boolean write = r.type() == CMD_WRITE;
    if (write && r.length() > limits.maxPayloadBytes()) {
      // Past the advertised maximum: draining a payload that large is itself the attack.
      throw new NbdProtocolException(
          "a write of " + r.length() + " bytes, over the maximum of " + limits.maxPayloadBytes());
    }
    int errno = check(r);
    // Reads and write payloads hold their bytes until answered; other requests hold none.
    int held = (write || (r.type() == CMD_READ && errno == 0)) ? (int) r.length() : 0;
    requests.acquire();
    boolean handedOver = false;
    try {
      serverBytes.acquire(held);
      ByteBuffer payload = null;
      try {
        if (write) {
          payload = buffers.acquire(held);
          readingPayloadSince = System.nanoTime() | 1;
          try {
            in.readFully(payload);
          } finally {
            readingPayloadSince = 0;
          }
          payload.flip();
        }
        if (errno == 0 && stopping.getAsBoolean()) {
          errno = ESHUTDOWN;
        }
        if (errno == 0) {
          ByteBuffer data = payload;
          if (servesInline(r)) {
            handedOver = true;
            payload = null; // serve gives it back
            long started = System.nanoTime();
            serve(r, data, held);
            if (System.nanoTime() - started > slowInlineNanos) {
              handOffsLeft = HANDED_OFF_AFTER_SLOW;
            }
          } else {
            try {
              workers.execute(() -> serve(r, data, held));
              handedOver = true;
              payload = null; // the worker's now
            } catch (RejectedExecutionException e) {
              errno = ESHUTDOWN;
            }
          }
        }
        if (errno != 0) {
          observer.request(commandName(r.type()), 0, 0, errno);
          failed.incrementAndGet();
          send(held, errorReply(r, errno, refusal(r, errno)), null);
          handedOver = true;
        }
      } finally {
        if (payload != null) {
          buffers.release(payload);
        }
        if (!handedOver) {
          serverBytes.release(held);
        }
      }
    } finally {
      if (!handedOver) {
        requests.release();
      }
    }
  }

  /**
   * Whether the connection's thread serves a request itself rather than handing it to a worker:
   * small reads and write-back writes, which the page cache usually answers in microseconds, less
   * than two thread hand-offs cost. Flushes, FUA writes, zeroes and large transfers go to the
   * workers, so that one connection can have several in progress. After a slow inline request the
   * next small ones go to the workers too, so a client whose reads miss the page cache still gets
   * them served in parallel.
   */
  private boolean servesInline(Request r) {
    if ((r.type() != CMD_READ && r.type() != CMD_WRITE)
        || r.fua()
        || r.length() > INLINE_MAX_BYTES) {
      return false;
    }
    if (handOffsLeft > 0) {
      handOffsLeft--;
      return false;
    }
    return true;
  }

  /**
   * Checks a request against the protocol and the disk before any work: flags, the range, the
   * export's access.
   *
   * @return 0, or the error to answer with
   */
  private int check(Request r) {
    int allowed =
        switch (r.type()) {
          case CMD_READ -> CMD_FLAG_FUA | (agreed.structuredReplies() ? CMD_FLAG_DF : 0);
          case CMD_WRITE_ZEROES -> CMD_FLAG_FUA | CMD_FLAG_NO_HOLE;
          case CMD_BLOCK_STATUS -> CMD_FLAG_FUA | CMD_FLAG_REQ_ONE;
          case CMD_WRITE, CMD_FLUSH, CMD_TRIM, CMD_CACHE -> CMD_FLAG_FUA;
          default -> -1;
        };
    if (allowed < 0 || (r.flags() & ~allowed) != 0) {
      return EINVAL;
    }
    boolean changes = r.type() == CMD_WRITE || r.type() == CMD_WRITE_ZEROES || r.type() == CMD_TRIM;
    if (changes && agreed.export().readOnly()) {
      return EPERM;
    }
    long size;
    try {
      size = disk.sizeBytes();
    } catch (ServiceException e) {
      return EIO;
    }
    boolean inside = Long.compareUnsigned(r.offset(), size) <= 0 && r.length() <= size - r.offset();
    return switch (r.type()) {
      case CMD_FLUSH -> r.offset() == 0 && r.length() == 0 ? 0 : EINVAL;
      case CMD_WRITE, CMD_WRITE_ZEROES -> inside ? 0 : ENOSPC;
      case CMD_READ -> inside && r.length() <= limits.maxPayloadBytes() ? 0 : EINVAL;
      case CMD_BLOCK_STATUS -> !agreed.baseAllocation() || r.length() == 0 || !inside ? EINVAL : 0;
      default -> inside ? 0 : EINVAL;
    };
  }

  /**
   * Runs one request, on a worker or the connection's thread, and queues its reply, which gives
   * back what it holds; gives back a write's payload.
   */
  private void serve(Request r, @Nullable ByteBuffer payload, int held) {
    long started = System.nanoTime();
    int errno = 0;
    long moved = 0;
    ByteBuffer data = null; // a read's, given back once its reply is written
    ReplyBody reply;
    try {
      reply =
          switch (r.type()) {
            case CMD_READ -> {
              data = buffers.acquire((int) r.length());
              disk.read(r.offset(), data);
              data.flip();
              moved = r.length();
              bytesRead.addAndGet(moved);
              yield readReply(r, data);
            }
            case CMD_WRITE -> {
              disk.write(r.offset(), payload, r.durability());
              moved = r.length();
              bytesWritten.addAndGet(moved);
              yield done(r);
            }
            case CMD_WRITE_ZEROES -> {
              if (r.length() > 0 && (r.flags() & CMD_FLAG_NO_HOLE) != 0) {
                writeZeros(r);
              } else if (r.length() > 0) {
                disk.zero(r.offset(), r.length(), r.durability());
              }
              yield done(r);
            }
            case CMD_FLUSH -> {
              disk.flush();
              yield done(r);
            }
            case CMD_TRIM -> {
              // Zeroing frees the chunks the range covers whole; the client may assume nothing
              // of the range afterwards, and zeros are one thing it may find.
              if (r.length() > 0) {
                disk.zero(r.offset(), r.length(), r.durability());
              } else if (r.fua()) {
                disk.flush();
              }
              yield done(r);
            }
            case CMD_CACHE -> done(r); // advisory; not advertised, but some clients send it
            case CMD_BLOCK_STATUS -> blockStatusReply(r);
            default -> throw new IllegalStateException("unchecked command " + r.type());
          };
    } catch (ServiceException e) {
      errno = errnoOf(e, r.type());
      reply = errorReply(r, errno, e.getMessage());
    } catch (RuntimeException e) {
      errno = EIO;
      log.error(
          "NBD {} of image \"{}\" failed unexpectedly", commandName(r.type()), agreed.name(), e);
      reply = errorReply(r, errno, "internal error");
    } finally {
      if (payload != null) {
        buffers.release(payload);
      }
    }
    if (errno != 0 && data != null) {
      buffers.release(data);
      data = null;
    }
    (errno == 0 ? served : failed).incrementAndGet();
    observer.request(commandName(r.type()), System.nanoTime() - started, moved, errno);
    send(held, reply, data);
  }

  /**
   * WRITE_ZEROES with NO_HOLE: the zeros must take storage, so they are written as data rather than
   * by zeroing, which frees whole chunks.
   */
  private void writeZeros(Request r) {
    ByteBuffer zeros = ZEROS.duplicate();
    for (long done = 0; done < r.length(); done += zeros.capacity()) {
      int n = (int) Math.min(zeros.capacity(), r.length() - done);
      boolean last = done + n == r.length();
      disk.write(
          r.offset() + done, zeros.clear().limit(n), last ? r.durability() : Durability.BUFFERED);
    }
  }

  /** A read-only megabyte of zeros for {@link #writeZeros}. */
  private static final ByteBuffer ZEROS = ByteBuffer.allocateDirect(1 << 20).asReadOnlyBuffer();

  /**
   * The error for a failure of the disk: EIO for everything that is not the client's doing (a
   * deleted image, a latched image after a failed flush, an I/O failure, corruption).
   */
  private static int errnoOf(ServiceException e, int type) {
    if (e instanceof ImageReadOnlyException) {
      return EPERM;
    }
    if (e instanceof InsufficientStorageException) {
      return ENOSPC;
    }
    if (e instanceof RangeOutsideDiskException) {
      return type == CMD_WRITE || type == CMD_WRITE_ZEROES ? ENOSPC : EINVAL;
    }
    return EIO;
  }

  private String refusal(Request r, int errno) {
    return switch (errno) {
      case EPERM -> "the export is read-only";
      case ENOSPC -> "the write runs past the end of the disk";
      case ESHUTDOWN -> "the server is shutting down";
      case EIO -> "the image is not available";
      default -> {
        if (r.type() == CMD_BLOCK_STATUS && !agreed.baseAllocation()) {
          yield "block status needs the base:allocation context";
        }
        yield r.type() == CMD_READ && r.length() > limits.maxPayloadBytes()
            ? "the read is longer than the maximum block size"
            : "invalid request: a bad flag, range or command";
      }
    };
  }

  private ReplyBody readReply(Request r, ByteBuffer data) {
    if (!agreed.structuredReplies()) {
      return out -> {
        simpleHeader(out, r.cookie(), 0);
        out.put(data);
      };
    }
    if (!data.hasRemaining()) {
      return out -> chunkHeader(out, REPLY_TYPE_NONE, r.cookie(), 0);
    }
    return out -> {
      chunkHeader(out, REPLY_TYPE_OFFSET_DATA, r.cookie(), 8 + data.remaining());
      out.putLong(r.offset());
      out.put(data);
    };
  }

  private ReplyBody blockStatusReply(Request r) {
    boolean one = (r.flags() & CMD_FLAG_REQ_ONE) != 0;
    List<DiskExtent> extents = disk.extents(r.offset(), r.length(), one ? 1 : MAX_EXTENTS);
    // Data stored here and data read through the base are both "allocated" to NBD: merge them.
    long[] lengths = new long[extents.size()];
    int[] states = new int[extents.size()];
    int merged = 0;
    for (DiskExtent e : extents) {
      int state = e.state() == DiskExtent.State.ZERO ? STATE_HOLE | STATE_ZERO : 0;
      if (merged > 0 && states[merged - 1] == state) {
        lengths[merged - 1] += e.lengthBytes();
      } else {
        lengths[merged] = e.lengthBytes();
        states[merged++] = state;
      }
    }
    int n = merged;
    return out -> {
      chunkHeader(out, REPLY_TYPE_BLOCK_STATUS, r.cookie(), 4 + 8 * n);
      out.putInt(BASE_ALLOCATION_ID);
      for (int i = 0; i < n; i++) {
        // Within the request, whose length is a u32, so every extent fits one.
        out.putInt((int) lengths[i]).putInt(states[i]);
      }
    };
  }

  /** Success without data. */
  private ReplyBody done(Request r) {
    return errorReply(r, 0, "");
  }

  /**
   * An answer without data: success or an error. Reads and block status get an error chunk once
   * structured replies are on (the protocol requires it for reads); everything else a simple reply.
   */
  private ReplyBody errorReply(Request r, int errno, String message) {
    boolean structured =
        agreed.structuredReplies() && (r.type() == CMD_READ || r.type() == CMD_BLOCK_STATUS);
    if (!structured) {
      return out -> simpleHeader(out, r.cookie(), errno);
    }
    if (errno == 0) {
      return out -> chunkHeader(out, REPLY_TYPE_NONE, r.cookie(), 0);
    }
    byte[] text = clipped(message);
    return out -> {
      chunkHeader(out, REPLY_TYPE_ERROR, r.cookie(), 6 + text.length);
      out.putInt(errno).putShort(text.length).put(text);
    };
  }

  private static byte[] clipped(String message) {
    byte[] bytes = message.getBytes(StandardCharsets.UTF_8);
    if (bytes.length <= MAX_MESSAGE_BYTES) {
      return bytes;
    }
    // Cut at a character boundary: drop continuation bytes at the cut.
    int end = MAX_MESSAGE_BYTES;
    while (end > 0 && (bytes[end] & 0xc0) == 0x80) {
      end--;
    }
    return java.util.Arrays.copyOf(bytes, end);
  }

  private static void simpleHeader(ReplyOutput out, long cookie, int errno) throws IOException {
    out.putInt(SIMPLE_REPLY_MAGIC).putInt(errno).putLong(cookie);
  }

  private static void chunkHeader(ReplyOutput out, int type, long cookie, int length)
      throws IOException {
    out.putInt(STRUCTURED_REPLY_MAGIC)
        .putShort(REPLY_FLAG_DONE)
        .putShort(type)
        .putLong(cookie)
        .putInt(length);
  }

  /**
   * Waits until no request of this connection is in progress, at most {@code nanos}.
   *
   * @return whether it is idle; then it stays idle only if no request is read meanwhile
   */
  boolean awaitIdle(long nanos) throws InterruptedException {
    int all = limits.maxInFlightRequests();
    if (requests.tryAcquire(all, nanos, TimeUnit.NANOSECONDS)) {
      requests.release(all);
      return true;
    }
    return false;
  }

  long served() {
    return served.get();
  }

  long failed() {
    return failed.get();
  }

  long bytesRead() {
    return bytesRead.get();
  }

  long bytesWritten() {
    return bytesWritten.get();
  }
}
