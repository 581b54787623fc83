package dev.fvdisk.web;

import dev.fvdisk.security.AccessPolicy;
import dev.fvdisk.security.AccessToken;
import dev.fvdisk.security.Role;
import dev.fvdisk.security.TokenRegistry;
import dev.fvdisk.service.Access;
import dev.fvdisk.service.ExpectedVersion;
import dev.fvdisk.service.ImageElsewhereException;
import dev.fvdisk.service.ImageNotFoundException;
import dev.fvdisk.service.RangeOutsideDiskException;
import dev.fvdisk.service.ServiceException;
import dev.fvdisk.service.VersionMismatchException;
import dev.fvdisk.service.VirtualDisk;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One client of the data port: reads request heads one after another on its own thread, answers
 * each, and keeps the connection while the client does. What it answers, and how, is described on
 * {@link DataPortServer}; the bytes of a read go through the same {@link DiskStreams} and {@link
 * ByteRanges} as on the main port, and problems carry the same types, titles and details.
 */
final class DataPortConnection implements Runnable {

  private static final Logger log = LoggerFactory.getLogger(DataPortConnection.class);

  /** The most a closing connection reads and drops of what its client still sends. */
  private static final long LINGER_BYTES = 2L << 20;

  /** How long a closing connection waits, in all, for its client to stop sending. */
  private static final int LINGER_MILLIS = 2000;

  private static final String PREFIX = "/api/v1/images/";
  private static final String SUFFIX = "/data";

  /** The headers Spring Security writes on every answer of the main port, written here alike. */
  private static final byte[] SECURITY_HEADERS =
      ascii(
          "X-Content-Type-Options: nosniff\r\n"
              + "X-XSS-Protection: 0\r\n"
              + "Cache-Control: no-cache, no-store, max-age=0, must-revalidate\r\n"
              + "Pragma: no-cache\r\n"
              + "Expires: 0\r\n"
              + "X-Frame-Options: DENY\r\n");

  private final Socket socket;
  private final SocketChannel channel;
  private final DataPortServer server;
  private final String name;
  private final byte[] input = new byte[DataPortRequest.MAX_HEAD_BYTES];
  private int filled;
  private int consumed;

  /**
   * The status line and headers of an answer. Direct, so a gathering write sends it with the data
   * without a copy; made when the connection starts, not for one refused at the limit.
   */
  private ByteBuffer head = ByteBuffer.allocate(0);

  /**
   * When the thread began to wait on the socket, writing an answer or reading a body, or 0; the
   * watchdog reads it.
   */
  private volatile long blockedSinceNanos;

  /** The request target being answered, query included, for the {@code Location} of a 307. */
  private String target = "/";

  /** Whether the request being answered asked to close the connection after its answer. */
  private boolean closeAfter;

  /** Whether the request being answered is HTTP/1.0 keeping its connection, which must be said. */
  private boolean sayKeepAlive;

  /** Whether a request is being answered; an idle connection is closed at once on stop. */
  private volatile boolean answering;

  /** The status of the answer being sent, for the record when the client leaves during it. */
  private int statusSent;

  /**
   * Whether the request being answered has body bytes not yet read: the next head cannot be found,
   * so the connection closes after the answer.
   */
  private boolean bodyUnread;

  DataPortConnection(Socket socket, String name, DataPortServer server) {
    this.socket = socket;
    this.channel = Objects.requireNonNull(socket.getChannel(), "accepted through a channel");
    this.name = name;
    this.server = server;
  }

  String name() {
    return name;
  }

  InetAddress peer() {
    return socket.getInetAddress();
  }

  boolean answering() {
    return answering;
  }

  /**
   * Whether the client has taken no bytes of an answer, or sent none of a body, for longer than
   * {@code limitNanos}.
   */
  boolean stalled(long nowNanos, long limitNanos) {
    long since = blockedSinceNanos;
    return since != 0 && nowNanos - since > limitNanos;
  }

  void close() {
    try {
      socket.close();
    } catch (IOException e) {
      // closing is all that is left to do
    }
  }

  @Override
  public void run() {
    try {
      head = ByteBuffer.allocateDirect(DataPortRequest.MAX_HEAD_BYTES * 2);
      socket.setTcpNoDelay(true);
      socket.setSoTimeout((int) server.limits().idleTimeout().toMillis());
      InputStream in = socket.getInputStream();
      while (!server.stopping()) {
        DataPortRequest request = readHead(in);
        if (request == null) {
          return;
        }
        answering = true;
        boolean keep;
        try {
          keep = answer(request) && request.keepAlive();
        } finally {
          answering = false;
        }
        if (!keep) {
          lingerBeforeClose(in);
          return;
        }
      }
    } catch (IOException e) {
      log.debug("data port connection {} ended: {}", name, e.toString());
    } finally {
      close();
      server.forget(this);
    }
  }

  /**
   * The next request's head, or null when the connection is to end: the client closed it or was
   * idle past the timeout, or the head was refused (answered here).
   */
  private @Nullable DataPortRequest readHead(InputStream in) throws IOException {
    System.arraycopy(input, consumed, input, 0, filled - consumed);
    filled -= consumed;
    consumed = 0;
    // The head's clock starts with its first byte, so an idle wait before it is not counted.
    long startedNanos = filled > 0 ? System.nanoTime() : 0;
    int scanned = 0;
    int emptyLines = 0;
    while (true) {
      // Empty lines before a request line are ignored (RFC 9112, section 2.2), a head's worth at
      // most; dropped here, so that the blank line ending the head is the first CRLFCRLF found.
      int skip = 0;
      while (skip + 1 < filled && input[skip] == '\r' && input[skip + 1] == '\n') {
        skip += 2;
      }
      if (skip > 0) {
        emptyLines += skip / 2;
        if (emptyLines > DataPortRequest.MAX_HEAD_BYTES / 2) {
          return null;
        }
        System.arraycopy(input, skip, input, 0, filled - skip);
        filled -= skip;
        scanned = 0;
      }
      int end = DataPortRequest.headEnd(input, scanned, filled);
      if (end > 0) {
        consumed = end;
        try {
          return DataPortRequest.parse(input, 0, end);
        } catch (DataPortRequest.Malformed e) {
          problem("-", "/", ProblemType.BAD_REQUEST, e.getMessage(), Map.of(), null, false);
          lingerBeforeClose(in);
          return null;
        }
      }
      if (filled == input.length) {
        problem(
            "-",
            "/",
            ProblemType.HEADERS_TOO_LARGE,
            "the request head is longer than " + input.length + " bytes",
            Map.of(),
            null,
            false);
        lingerBeforeClose(in);
        return null;
      }
      scanned = Math.max(0, filled - 3);
      int n;
      try {
        n = in.read(input, filled, input.length - filled);
      } catch (SocketTimeoutException idle) {
        return null;
      }
      if (n < 0) {
        return null;
      }
      filled += n;
      long now = System.nanoTime();
      if (startedNanos == 0) {
        startedNanos = now;
      } else if (now - startedNanos > server.limits().idleTimeout().toNanos()) {
        // A head trickling in a byte at a time holds a thread; it gets one timeout in all.
        return null;
      }
    }
  }

  /**
   * Ends the connection after an answer that closes it. Closing a socket whose client is still
   * sending (a refused write's body, the rest of a malformed request) makes the kernel answer with
   * a reset, which can destroy the answer before the client has read it. So the answer is followed
   * by a FIN, and what the client still sends is read and dropped, at most {@link #LINGER_BYTES}
   * and {@link #LINGER_MILLIS}, as Tomcat swallows a refused body and nginx lingers on close; the
   * caller then closes the socket.
   */
  private void lingerBeforeClose(InputStream in) {
    try {
      socket.shutdownOutput();
      long deadline = System.nanoTime() + LINGER_MILLIS * 1_000_000L;
      long dropped = 0;
      while (dropped < LINGER_BYTES) {
        long leftMillis = (deadline - System.nanoTime()) / 1_000_000L;
        if (leftMillis <= 0) {
          return;
        }
        socket.setSoTimeout((int) leftMillis);
        int n = in.read(input);
        if (n < 0) {
          return;
        }
        dropped += n;
      }
    } catch (IOException e) {
      // The client is gone or slow; the socket is closed either way.
    }
  }

  /** Answers one request; false when the connection must close after it. */
  private boolean answer(DataPortRequest request) throws IOException {
    long start = System.nanoTime();
    closeAfter = !request.keepAlive();
    bodyUnread = request.hasBody();
    target = request.target;
    sayKeepAlive = !request.http11 && request.keepAlive();
    String path = request.target;
    int query = path.indexOf('?');
    if (query >= 0) {
      path = path.substring(0, query);
    }
    String image = imageName(path);
    String uri = image == null ? "NOT_FOUND" : RangeReadFilter.PATTERN;
    Outcome outcome = Outcome.NONE;
    statusSent = Outcome.NONE.status;
    try {
      outcome = route(request, path, image);
      return outcome.keepAlive && !bodyUnread;
    } catch (IOException e) {
      // The client went away during its answer: recorded with the status it was being sent, as
      // Spring records a client that leaves the main port, not as a failure of the server.
      outcome = new Outcome(statusSent, false, e.getClass().getSimpleName());
      throw e;
    } finally {
      server.record(
          request.method, outcome.status, uri, outcome.exception, System.nanoTime() - start);
    }
  }

  /** What an answer was, for the connection and for {@code http.server.requests}. */
  private record Outcome(int status, boolean keepAlive, String exception) {
    static final Outcome NONE = new Outcome(500, false, "none");
  }

  private Outcome route(DataPortRequest request, String path, @Nullable String image)
      throws IOException {
    String method = request.method;
    boolean isPut = method.equals("PUT");
    if (request.hasBody() && !isPut) {
      // The body is never read, so the answer closes the connection.
      return problem(
          method,
          path,
          ProblemType.BAD_REQUEST,
          "a " + method + " on the data port takes no request body",
          Map.of(),
          null,
          false);
    }
    if (image == null) {
      return problem(
          method, path, ProblemType.NOT_FOUND, "no resource at " + path, Map.of(), null, true);
    }
    boolean isHead = method.equals("HEAD");
    if (!isHead && !isPut && !method.equals("GET")) {
      return problem(
          method,
          path,
          ProblemType.METHOD_NOT_ALLOWED,
          "method " + method + " is not allowed on the data port; it answers GET, HEAD and PUT",
          Map.of(),
          "Allow: GET, HEAD, PUT\r\n",
          true);
    }
    String query =
        path.length() == request.target.length()
            ? null
            : request.target.substring(path.length() + 1);
    Boolean flush = isPut ? RangeWriteFilter.flushOf(query) : (query == null ? Boolean.TRUE : null);
    if (flush == null) {
      return problem(
          method,
          path,
          ProblemType.BAD_REQUEST,
          isPut
              ? "the only query a write on the data port takes is flush=true or flush=false"
              : "a read on the data port takes no query string",
          Map.of(),
          null,
          true);
    }
    AccessToken token;
    try {
      token = server.tokens().authenticate(request.authorization);
    } catch (IllegalArgumentException e) {
      return problem(
          method,
          path,
          ProblemType.UNAUTHORIZED,
          e.getMessage(),
          Map.of(),
          "WWW-Authenticate: " + TokenRegistry.CHALLENGE + "\r\n",
          true);
    }
    switch (AccessPolicy.decide(token, isPut ? Role.WRITER : Role.READER, image)) {
      case GRANTED -> {
        // carry on
      }
      case DENIED -> {
        return problem(
            method,
            path,
            ProblemType.FORBIDDEN,
            "token \""
                + token.name()
                + "\" (role "
                + token.role().name().toLowerCase(java.util.Locale.ROOT)
                + ") may not "
                + method
                + " "
                + path,
            Map.of(),
            null,
            true);
      }
      case HIDDEN -> {
        return serviceProblem(method, path, new ImageNotFoundException(image));
      }
    }
    if (isPut) {
      return write(request, path, image, flush);
    }
    try (VirtualDisk disk = server.images().attach(image, Access.READ_ONLY)) {
      DataState state = DataState.of(disk);
      if (isHead) {
        startAnswer(200, state, null, state.sizeBytes());
        put("\r\n");
        send(head.flip(), null);
        return new Outcome(200, true, "none");
      }
      ByteRanges.Span span;
      try {
        span = ByteRanges.parseRange(request.range, state.sizeBytes());
      } catch (HttpProblemException e) {
        return httpProblem(method, path, e);
      }
      return read(request, disk, state, span);
    } catch (ServiceException e) {
      return serviceProblem(method, path, e);
    } catch (RuntimeException e) {
      return unexpected(method, path, e);
    }
  }

  private Outcome unexpected(String method, String path, RuntimeException e) throws IOException {
    log.error("{} {} on the data port answered 500", method, path, e);
    Outcome answered =
        problem(
            method,
            path,
            ProblemType.INTERNAL_ERROR,
            "the request failed unexpectedly; the server log has the details",
            Map.of(),
            null,
            false);
    return new Outcome(answered.status(), false, e.getClass().getSimpleName());
  }

  /**
   * Writes the body into the image and answers 204 with its new entity tag, as the main port's
   * {@code PUT} does: the same parsing, limits, {@code If-Match}, {@code Content-Digest} staging
   * and flush ({@link DiskStreams}). The body goes from the socket into the request's direct buffer
   * and from there to the disk, with no copy through the heap. A body needs a {@code
   * Content-Length}; a chunked one is sent to the main port.
   */
  private Outcome write(DataPortRequest request, String path, String image, boolean flush)
      throws IOException {
    String method = request.method;
    if (!isDataMediaType(request.contentType)) {
      return problem(
          method,
          path,
          ProblemType.UNSUPPORTED_MEDIA_TYPE,
          "Content-Type \""
              + request.contentType
              + "\" is not supported; a data write takes application/octet-stream",
          Map.of(),
          null,
          true);
    }
    try (VirtualDisk disk = server.images().attach(image, Access.READ_WRITE)) {
      // After the image, as the main port checks it (404, 307) before it looks at the body.
      if (request.transferCoded() || request.contentLengthBytes() < 0) {
        return problem(
            method,
            path,
            ProblemType.LENGTH_REQUIRED,
            "a write on the data port needs Content-Length; send chunked bodies to the main port",
            Map.of(),
            null,
            true);
      }
      ByteRanges.Span span =
          ByteRanges.parseWrite(
              request.contentRange, request.contentLengthBytes(), disk.sizeBytes());
      ExpectedVersion expected = EntityTags.parseIfMatch(request.ifMatch);
      ExpectedDigests digests =
          request.contentDigest == null ? null : ExpectedDigests.parse(request.contentDigest);
      Long maxWriteBytes = server.images().limits().maxWriteBytes();
      if (maxWriteBytes != null && span.lengthBytes() > maxWriteBytes) {
        throw new PayloadTooLargeException(span.lengthBytes(), maxWriteBytes);
      }
      Body body = new Body(request.contentLengthBytes(), request.expectContinue, request.http11);
      if (digests == null) {
        server.streams().write(disk, span, body, expected, flush);
      } else {
        server
            .streams()
            .write(disk, span, body, expected, flush, digests, server.images().staging());
      }
      startHead(204);
      put("ETag: ");
      put(EntityTags.quote(disk.version()));
      put("\r\nDate: ");
      head.put(server.date());
      put("\r\n");
      connectionHeader(closeAfter || server.stopping());
      put("\r\n");
      send(head.flip(), null);
      return new Outcome(204, true, "none");
    } catch (HttpProblemException e) {
      return httpProblem(method, path, e);
    } catch (VersionMismatchException e) {
      // As the main port words it (ProblemAdvice): in terms of the If-Match the client sent.
      return httpProblem(method, path, PreconditionFailedException.of(e));
    } catch (ServiceException e) {
      return serviceProblem(method, path, e);
    } catch (RuntimeException e) {
      return unexpected(method, path, e);
    }
  }

  /**
   * The body of a write: first the bytes that came in with the head, then the socket, never past
   * {@code Content-Length}, so the next request's head stays unread. A client that sends no byte
   * for the stall timeout is cut off by the watchdog, which ends the read with an exception.
   */
  private final class Body implements ReadableByteChannel {
    private long remaining;
    private boolean continueOwed;

    Body(long lengthBytes, boolean expectContinue, boolean http11) {
      this.remaining = lengthBytes;
      // Not to HTTP/1.0 (RFC 9110, section 10.1.1), nor when the body has begun to arrive.
      this.continueOwed = expectContinue && http11 && lengthBytes > 0 && consumed == filled;
    }

    @Override
    public int read(ByteBuffer into) throws IOException {
      if (remaining == 0) {
        return -1;
      }
      int wanted = (int) Math.min(into.remaining(), remaining);
      int n;
      if (consumed < filled) {
        n = Math.min(wanted, filled - consumed);
        into.put(input, consumed, n);
        consumed += n;
      } else {
        if (continueOwed) {
          // Sent only when the body is wanted: a write refused before it never asks for it.
          continueOwed = false;
          send(ByteBuffer.wrap(CONTINUE), null);
        }
        int limit = into.limit();
        into.limit(into.position() + wanted);
        blockedSinceNanos = System.nanoTime();
        try {
          n = channel.read(into);
        } finally {
          blockedSinceNanos = 0;
          into.limit(limit);
        }
        if (n < 0) {
          return -1;
        }
      }
      remaining -= n;
      bodyUnread = remaining > 0;
      return n;
    }

    @Override
    public boolean isOpen() {
      return channel.isOpen();
    }

    @Override
    public void close() {
      // The connection outlives its requests.
    }
  }

  /** Whether a write's {@code Content-Type} is one the main port's write takes, or absent. */
  private static boolean isDataMediaType(@Nullable String contentType) {
    return contentType == null
        || RangeWriteFilter.isMediaType(contentType, "application/octet-stream")
        || RangeWriteFilter.isMediaType(contentType, "application/x-www-form-urlencoded");
  }

  /** Sends the whole disk (200) or one range of it (206). */
  private Outcome read(
      DataPortRequest request, VirtualDisk disk, DataState state, ByteRanges.@Nullable Span range)
      throws IOException {
    ByteRanges.Span span = range == null ? new ByteRanges.Span(0, state.sizeBytes()) : range;
    int status = range == null ? 200 : 206;
    String contentRange =
        range == null
            ? null
            : "bytes " + span.offsetBytes() + "-" + span.lastByte() + "/" + state.sizeBytes();
    Sink sink = new Sink(status, state, contentRange, span.lengthBytes());
    DigestAlgorithm digest =
        request.wantContentDigest == null
            ? null
            : ContentDigests.preferred(request.wantContentDigest);
    try {
      if (digest == null) {
        server.streams().read(disk, span, sink);
      } else if (!server.streams().read(disk, span, sink, digest)) {
        // The span changed between the digest's read and the body's: the body stops short of its
        // length, and closing the connection tells the client so.
        return new Outcome(status, false, "none");
      }
      sink.flush();
      return new Outcome(status, true, "none");
    } catch (RuntimeException e) {
      if (!sink.started) {
        throw e;
      }
      log.info(
          "{} {} on the data port failed after its first bytes ({}); the connection is closed",
          request.method,
          request.target,
          e.getMessage());
      return new Outcome(status, false, e.getClass().getSimpleName());
    }
  }

  /** The answer to a read: status and headers go out with the first bytes, in one write. */
  private final class Sink implements DataSink {
    private final int status;
    private final DataState state;
    private final @Nullable String contentRange;
    private final long lengthBytes;
    private @Nullable String contentDigest;
    boolean started;

    Sink(int status, DataState state, @Nullable String contentRange, long lengthBytes) {
      this.status = status;
      this.state = state;
      this.contentRange = contentRange;
      this.lengthBytes = lengthBytes;
    }

    @Override
    public void contentDigest(String field) {
      contentDigest = field;
    }

    @Override
    public void write(ByteBuffer data) throws IOException {
      if (started) {
        send(null, data);
      } else {
        start();
        send(head.flip(), data);
      }
    }

    @Override
    public void flush() throws IOException {
      if (!started) {
        start();
        send(head.flip(), null);
      }
    }

    private void start() {
      started = true;
      startAnswer(status, state, contentRange, lengthBytes);
      if (contentDigest != null) {
        put(ContentDigests.CONTENT_DIGEST + ": " + contentDigest + "\r\n");
      }
      put("\r\n");
    }
  }

  /**
   * Puts the status line and the data headers into {@link #head}; the caller ends the head. HEAD's
   * answer is ended here, as it has nothing to add.
   */
  private void startAnswer(
      int status, DataState state, @Nullable String contentRange, long lengthBytes) {
    startHead(status);
    put("Accept-Ranges: bytes\r\nETag: ");
    put(EntityTags.quote(state.etag()));
    if (contentRange != null) {
      put("\r\nContent-Range: ");
      put(contentRange);
    }
    put("\r\nContent-Type: application/octet-stream\r\nContent-Length: ");
    put(Long.toString(lengthBytes));
    put("\r\nDate: ");
    head.put(server.date());
    put("\r\n");
    connectionHeader(closeAfter || server.stopping());
  }

  /**
   * Begins every answer's head in {@link #head}: the status line and the security headers, with the
   * status kept for the record should the client leave during the answer.
   */
  private void startHead(int status) {
    head.clear();
    statusSent = status;
    put("HTTP/1.1 ");
    put(Integer.toString(status));
    put(" \r\n");
    head.put(SECURITY_HEADERS);
  }

  /** Says that the connection closes after this answer, or, to HTTP/1.0, that it stays. */
  private void connectionHeader(boolean close) {
    if (close) {
      put("Connection: close\r\n");
    } else if (sayKeepAlive) {
      put("Connection: keep-alive\r\n");
    }
  }

  private Outcome serviceProblem(String method, String path, ServiceException e) {
    if (e instanceof ImageElsewhereException elsewhere) {
      return problemOrClose(
          method,
          path,
          ProblemType.IMAGE_ELSEWHERE,
          e.getMessage(),
          e.properties(),
          // The whole target, so a write's ?flush=false is repeated at the owner as sent here.
          "Location: " + elsewhere.ownerUrl() + target + "\r\n",
          true);
    }
    ProblemType type = ProblemType.of(e);
    if (type.status() == 503) {
      log.warn("{} {} on the data port answered 503: {}", method, path, e.getMessage());
    } else if (type.status() >= 500) {
      log.error("{} {} on the data port answered {}", method, path, type.status(), e);
    }
    // A range past the disk says the disk's size, as the main port's 416 does (RFC 9110, 15.5.17).
    String extra =
        e instanceof RangeOutsideDiskException range
            ? "Content-Range: bytes */" + range.sizeBytes() + "\r\n"
            : null;
    return problemOrClose(method, path, type, e.getMessage(), e.properties(), extra, true);
  }

  private Outcome httpProblem(String method, String path, HttpProblemException e) {
    String extra =
        e instanceof RangeNotSatisfiableException range
            ? "Content-Range: bytes */" + range.sizeBytes() + "\r\n"
            : null;
    return problemOrClose(
        method, path, ProblemType.of(e), e.getMessage(), e.properties(), extra, true);
  }

  private Outcome problemOrClose(
      String method,
      String path,
      ProblemType type,
      @Nullable String detail,
      Map<String, Object> properties,
      @Nullable String extraHeaders,
      boolean keepAlive) {
    try {
      return problem(method, path, type, detail, properties, extraHeaders, keepAlive);
    } catch (IOException e) {
      return new Outcome(type.status(), false, "none");
    }
  }

  /**
   * Sends an RFC 9457 problem, shaped as the main port's: type, title, status, detail, instance and
   * the extension members.
   */
  private Outcome problem(
      String method,
      String path,
      ProblemType type,
      @Nullable String detail,
      Map<String, Object> properties,
      @Nullable String extraHeaders,
      boolean keepAlive)
      throws IOException {
    Map<String, Object> body = new LinkedHashMap<>();
    body.put("type", type.type().toString());
    body.put("title", type.title());
    body.put("status", type.status());
    if (detail != null) {
      body.put("detail", detail);
    }
    body.put("instance", path);
    body.putAll(properties);
    byte[] json = DataPortServer.JSON.writeValueAsBytes(body);
    boolean close = !keepAlive || closeAfter || bodyUnread || server.stopping();
    startHead(type.status());
    if (extraHeaders != null) {
      put(extraHeaders);
    }
    put("Content-Type: application/problem+json\r\nContent-Length: " + json.length + "\r\n");
    put("Date: ");
    head.put(server.date());
    put("\r\n");
    connectionHeader(close);
    put("\r\n");
    send(head.flip(), method.equals("HEAD") ? null : ByteBuffer.wrap(json));
    if (log.isDebugEnabled()) {
      log.debug("{} {} on the data port answered {}: {}", method, path, type.status(), detail);
    }
    return new Outcome(type.status(), !close, "none");
  }

  /** Writes {@code first} then {@code second} to the socket, as one gathering write when both. */
  private void send(@Nullable ByteBuffer first, @Nullable ByteBuffer second) throws IOException {
    blockedSinceNanos = System.nanoTime();
    try {
      // The stall clock restarts with every write that moved bytes: a slow reader that keeps
      // taking them is not cut off, only one that takes none for the stall timeout.
      if (first != null && second != null) {
        ByteBuffer[] both = {first, second};
        while (second.hasRemaining()) {
          if (channel.write(both) > 0) {
            blockedSinceNanos = System.nanoTime();
          }
        }
      } else {
        ByteBuffer only = first != null ? first : Objects.requireNonNull(second);
        while (only.hasRemaining()) {
          if (channel.write(only) > 0) {
            blockedSinceNanos = System.nanoTime();
          }
        }
      }
    } finally {
      blockedSinceNanos = 0;
    }
  }

  private void put(String ascii) {
    for (int i = 0; i < ascii.length(); i++) {
      char c = ascii.charAt(i);
      // Header values here are made by the service (names, numbers, tags, URLs): ASCII only.
      head.put(c < 0x80 ? (byte) c : (byte) '?');
    }
  }

  /**
   * The image named by a plain {@code /api/v1/images/{name}/data}: no encoded or dot segments, no
   * path parameters ({@link RangeReadFilter#plainName}, the main port's rule).
   */
  static @Nullable String imageName(String path) {
    if (!path.startsWith(PREFIX) || !path.endsWith(SUFFIX)) {
      return null;
    }
    int end = path.length() - SUFFIX.length();
    return end < PREFIX.length()
        ? null
        : RangeReadFilter.plainName(path.substring(PREFIX.length(), end));
  }

  private static final byte[] CONTINUE = ascii("HTTP/1.1 100 Continue\r\n\r\n");

  private static byte[] ascii(String text) {
    return text.getBytes(StandardCharsets.US_ASCII);
  }
}
