package dev.fvdisk.web;

import static org.assertj.core.api.Assertions.assertThat;

import dev.fvdisk.service.Access;
import dev.fvdisk.service.CreateImageCommand;
import dev.fvdisk.service.Durability;
import dev.fvdisk.service.ImageDirectory;
import dev.fvdisk.service.ImageService;
import dev.fvdisk.service.ServiceLimits;
import dev.fvdisk.service.VirtualDisk;
import jakarta.servlet.DispatcherType;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.mock.web.MockFilterChain;
import org.springframework.mock.web.MockHttpServletRequest;
import org.springframework.mock.web.MockHttpServletResponse;

/**
 * Which requests the filter answers itself and which it passes on to Spring MVC untouched. That its
 * answers equal the controller's is what the HTTP tests of ranged reads check, since every plain
 * ranged read goes through it.
 */
class RangeReadFilterTest {

  private static final ServiceLimits LIMITS =
      new ServiceLimits(1L << 40, null, 65536, 0, 4096, 1000, 16);

  @TempDir Path dir;
  private ImageService images;
  private RangeReadFilter filter;
  private final byte[] content = new byte[1 << 20];

  @BeforeEach
  void createImage() throws Exception {
    images = new ImageService(new ImageDirectory(dir), LIMITS);
    images.create(new CreateImageCommand("vm", 1L << 20, null, 65536L, null, null, null, null));
    for (int i = 0; i < content.length; i++) {
      content[i] = (byte) (i * 31 + 7);
    }
    try (VirtualDisk disk = images.attach("vm", Access.READ_WRITE)) {
      disk.write(0, ByteBuffer.wrap(content), Durability.DURABLE);
    }
    filter = new RangeReadFilter(images, new DiskStreams(LIMITS.ioBufferBytes()));
  }

  @AfterEach
  void close() throws Exception {
    images.close();
  }

  @Test
  void answers_a_plain_ranged_read_itself() throws Exception {
    MockHttpServletRequest request = get("/api/v1/images/vm/data", "bytes=70000-70099");
    MockHttpServletResponse response = new MockHttpServletResponse();
    AtomicInteger passedOn = new AtomicInteger();
    filter.doFilter(request, response, (req, res) -> passedOn.incrementAndGet());

    assertThat(passedOn).hasValue(0);
    assertThat(response.getStatus()).isEqualTo(206);
    assertThat(response.getHeader("Content-Range")).isEqualTo("bytes 70000-70099/1048576");
    assertThat(response.getContentLengthLong()).isEqualTo(100);
    assertThat(response.getContentType()).isEqualTo("application/octet-stream");
    assertThat(response.getHeader("Accept-Ranges")).isEqualTo("bytes");
    assertThat(response.getHeader("ETag"))
        .isEqualTo(EntityTags.quote(images.describe("vm").version()));
    assertThat(response.getContentAsByteArray())
        .isEqualTo(Arrays.copyOfRange(content, 70000, 70100));
  }

  @Test
  void answers_under_a_context_path_too() throws Exception {
    MockHttpServletRequest request = get("/disks/api/v1/images/vm/data", "bytes=0-9");
    request.setContextPath("/disks");
    MockHttpServletResponse response = new MockHttpServletResponse();
    filter.doFilter(request, response, (req, res) -> {});

    assertThat(response.getStatus()).isEqualTo(206);
    assertThat(response.getContentAsByteArray()).isEqualTo(Arrays.copyOfRange(content, 0, 10));
  }

  @Test
  void passes_on_everything_it_is_not_sure_about() throws Exception {
    assertPassedOn(get("/api/v1/images/vm/data", null)); // whole disk
    assertPassedOn(get("/api/v1/images/nope/data", "bytes=0-9")); // no such image
    assertPassedOn(get("/api/v1/images/vm/data", "bytes=9-0")); // inverted
    assertPassedOn(get("/api/v1/images/vm/data", "bytes=2000000-")); // past the end
    assertPassedOn(get("/api/v1/images/vm/data", "bytes=0-1,5-6")); // several ranges
    assertPassedOn(get("/api/v1/images/vm/data", "pages=0-9")); // malformed
    assertPassedOn(get("/api/v1/images/%76m/data", "bytes=0-9")); // encoded name
    assertPassedOn(get("/api/v1/images/vm;x=1/data", "bytes=0-9")); // path parameter
    assertPassedOn(get("/api/v1/images/../data", "bytes=0-9"));
    assertPassedOn(get("/api/v1/images/vm/sectors/0", "bytes=0-9"));
    assertPassedOn(get("/api/v1/images/data", "bytes=0-9"));
    assertPassedOn(get("/api/v1/images//data", "bytes=0-9"));
    assertPassedOn(get("/other/api/v1/images/vm/data", "bytes=0-9"));
    MockHttpServletRequest query = get("/api/v1/images/vm/data", "bytes=0-9");
    query.setQueryString("flush=false");
    assertPassedOn(query);
    MockHttpServletRequest head = get("/api/v1/images/vm/data", "bytes=0-9");
    head.setMethod("HEAD");
    assertPassedOn(head);
    MockHttpServletRequest withBody = get("/api/v1/images/vm/data", "bytes=0-9");
    withBody.setContent(new byte[] {1});
    assertPassedOn(withBody);
    MockHttpServletRequest wantsDigest = get("/api/v1/images/vm/data", "bytes=0-9");
    wantsDigest.addHeader("Want-Content-Digest", "sha-256=1");
    assertPassedOn(wantsDigest);
    MockHttpServletRequest errorPage = get("/api/v1/images/vm/data", "bytes=0-9");
    errorPage.setDispatcherType(DispatcherType.ERROR);
    assertPassedOn(errorPage);
  }

  private static MockHttpServletRequest get(String uri, String range) {
    MockHttpServletRequest request = new MockHttpServletRequest("GET", uri);
    if (range != null) {
      request.addHeader("Range", range);
    }
    return request;
  }

  private void assertPassedOn(MockHttpServletRequest request) throws Exception {
    MockHttpServletResponse response = new MockHttpServletResponse();
    MockFilterChain chain = new MockFilterChain();
    filter.doFilter(request, response, chain);
    assertThat(chain.getRequest()).as(request.getRequestURI()).isSameAs(request);
    assertThat(response.getHeaderNames()).as(request.getRequestURI()).isEmpty();
    assertThat(response.getContentLengthLong()).isZero();
  }
}
