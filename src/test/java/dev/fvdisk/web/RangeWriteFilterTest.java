package dev.fvdisk.web;

import static org.assertj.core.api.Assertions.assertThat;

import dev.fvdisk.service.Access;
import dev.fvdisk.service.CreateImageCommand;
import dev.fvdisk.service.ImageDirectory;
import dev.fvdisk.service.ImageService;
import dev.fvdisk.service.ServiceLimits;
import dev.fvdisk.service.VirtualDisk;
import jakarta.servlet.DispatcherType;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.mock.web.MockFilterChain;
import org.springframework.mock.web.MockHttpServletRequest;
import org.springframework.mock.web.MockHttpServletResponse;
import org.springframework.web.servlet.HandlerExceptionResolver;
import org.springframework.web.servlet.ModelAndView;

/**
 * Which writes the filter answers itself, and that every other one reaches Spring MVC with its body
 * unread. That its answers equal the controller's is what the HTTP tests of writes check, since
 * every plain ranged write of {@code application/octet-stream} goes through it.
 */
class RangeWriteFilterTest {

  private static final ServiceLimits LIMITS =
      new ServiceLimits(1L << 40, null, 65536, 0, 4096, 1000, 16);
  private static final long SIZE = 1 << 20;

  @TempDir Path dir;
  private ImageService images;
  private RangeWriteFilter filter;
  private final List<Exception> resolved = new ArrayList<>();

  @BeforeEach
  void createImage() throws Exception {
    images = new ImageService(new ImageDirectory(dir), LIMITS);
    images.create(new CreateImageCommand("vm", SIZE, null, 65536L, null, null, null, null));
    HandlerExceptionResolver problems =
        (request, response, handler, exception) -> {
          resolved.add(exception);
          response.setStatus(400);
          return new ModelAndView();
        };
    filter = new RangeWriteFilter(images, new DiskStreams(LIMITS.ioBufferBytes()), problems);
  }

  @AfterEach
  void close() throws Exception {
    images.close();
  }

  @Test
  void writes_a_plain_ranged_body_itself_and_answers_with_the_new_tag() throws Exception {
    byte[] body = pattern(100);
    for (String query : new String[] {null, "flush=true", "flush=false"}) {
      MockHttpServletRequest request = put("/api/v1/images/vm/data", "bytes 70000-70099/*", body);
      request.setQueryString(query);
      if (query == null) {
        request.setContentType("Application/Octet-Stream; charset=ISO-8859-1");
      }
      MockHttpServletResponse response = new MockHttpServletResponse();
      MockFilterChain chain = new MockFilterChain();
      filter.doFilter(request, response, chain);

      assertThat(chain.getRequest()).as(query).isNull();
      assertThat(response.getStatus()).isEqualTo(204);
      assertThat(response.getHeader("ETag"))
          .isEqualTo(EntityTags.quote(images.describe("vm").version()));
      assertThat(read(70000, 100)).isEqualTo(body);
    }
    assertThat(resolved).isEmpty();
  }

  @Test
  void passes_on_everything_it_is_not_sure_about_with_the_body_unread() throws Exception {
    byte[] before = read(0, 200);
    assertPassedOn(put("/api/v1/images/nope/data", "bytes 0-9/*", pattern(10))); // no image
    assertPassedOn(put("/api/v1/images/vm/data", "bytes 9-0/*", pattern(10))); // inverted
    assertPassedOn(put("/api/v1/images/vm/data", "bytes 0-9/*", pattern(11))); // length differs
    assertPassedOn(put("/api/v1/images/vm/data", "bytes 0-9/5", pattern(10))); // other size
    assertPassedOn(
        put("/api/v1/images/vm/data", "bytes " + SIZE + "-" + (SIZE + 9) + "/*", pattern(10)));
    assertPassedOn(put("/api/v1/images/vm/data", "pages 0-9/*", pattern(10))); // malformed
    assertPassedOn(put("/api/v1/images/vm/data", null, pattern(10))); // no Content-Range
    assertPassedOn(put("/api/v1/images/%76m/data", "bytes 0-9/*", pattern(10)));
    assertPassedOn(put("/api/v1/images/vm;x=1/data", "bytes 0-9/*", pattern(10)));
    assertPassedOn(put("/api/v1/images/vm/sectors/0", "bytes 0-9/*", pattern(10)));
    for (String query : new String[] {"flush=1", "flush=no", "flush=false&flush=true", "x=1"}) {
      assertPassedOn(plainWrite(r -> r.setQueryString(query)));
    }
    assertPassedOn(plainWrite(r -> r.addHeader("If-Match", "\"1\"")));
    assertPassedOn(plainWrite(r -> r.addHeader("Content-Digest", "sha-256=:AAAA:")));
    assertPassedOn(plainWrite(r -> r.setContentType("application/x-www-form-urlencoded")));
    assertPassedOn(plainWrite(r -> r.setContentType("application/octet-streams")));
    assertPassedOn(plainWrite(r -> r.addHeader("Transfer-Encoding", "chunked")));
    assertPassedOn(plainWrite(r -> r.setMethod("POST")));
    assertPassedOn(plainWrite(r -> r.setDispatcherType(DispatcherType.ERROR)));

    assertThat(read(0, 200)).isEqualTo(before);
    assertThat(resolved).isEmpty();
  }

  @Test
  void passes_on_a_write_over_the_size_limit_for_the_controller_to_refuse() throws Exception {
    Path limitedDir = java.nio.file.Files.createDirectories(dir.resolve("limited"));
    try (ImageService limited =
        new ImageService(
            new ImageDirectory(limitedDir.toRealPath()),
            new ServiceLimits(1L << 40, 4L, 65536, 0, 4096, 1000, 16))) {
      limited.create(new CreateImageCommand("vm", SIZE, null, 65536L, null, null, null, null));
      filter =
          new RangeWriteFilter(
              limited,
              new DiskStreams(LIMITS.ioBufferBytes()),
              (request, response, handler, exception) -> null);
      assertPassedOn(put("/api/v1/images/vm/data", "bytes 0-9/*", pattern(10)));
    }
  }

  @Test
  void a_body_that_ends_early_is_answered_through_the_exception_resolver() throws Exception {
    // Announces 100 bytes and sends 40.
    MockHttpServletRequest request =
        new MockHttpServletRequest("PUT", "/api/v1/images/vm/data") {
          @Override
          public long getContentLengthLong() {
            return 100;
          }
        };
    request.addHeader("Content-Range", "bytes 0-99/*");
    request.setContentType("application/octet-stream");
    request.setContent(pattern(40));
    MockHttpServletResponse response = new MockHttpServletResponse();
    MockFilterChain chain = new MockFilterChain();
    filter.doFilter(request, response, chain);

    assertThat(chain.getRequest()).isNull();
    assertThat(resolved).hasSize(1);
    assertThat(response.getStatus()).isEqualTo(400);
  }

  private static byte[] pattern(int length) {
    byte[] bytes = new byte[length];
    for (int i = 0; i < length; i++) {
      bytes[i] = (byte) (i * 31 + 7);
    }
    return bytes;
  }

  private byte[] read(long offset, int length) throws Exception {
    try (VirtualDisk disk = images.attach("vm", Access.READ_ONLY)) {
      ByteBuffer buffer = ByteBuffer.allocate(length);
      disk.read(offset, buffer);
      return Arrays.copyOf(buffer.array(), length);
    }
  }

  /** A write the filter would take, but for one change. */
  private static MockHttpServletRequest plainWrite(Consumer<MockHttpServletRequest> change) {
    MockHttpServletRequest request = put("/api/v1/images/vm/data", "bytes 0-9/*", pattern(10));
    change.accept(request);
    return request;
  }

  private static MockHttpServletRequest put(String uri, String contentRange, byte[] body) {
    MockHttpServletRequest request = new MockHttpServletRequest("PUT", uri);
    if (contentRange != null) {
      request.addHeader("Content-Range", contentRange);
    }
    request.setContentType("application/octet-stream");
    request.setContent(body);
    return request;
  }

  private void assertPassedOn(MockHttpServletRequest request) throws Exception {
    byte[] body = request.getContentAsByteArray();
    MockHttpServletResponse response = new MockHttpServletResponse();
    MockFilterChain chain = new MockFilterChain();
    filter.doFilter(request, response, chain);
    String what =
        request.getMethod() + " " + request.getRequestURI() + "?" + request.getQueryString();
    assertThat(chain.getRequest()).as(what).isSameAs(request);
    assertThat(response.getHeaderNames()).as(what).isEmpty();
    assertThat(request.getInputStream().readAllBytes()).as(what).isEqualTo(body);
  }
}
