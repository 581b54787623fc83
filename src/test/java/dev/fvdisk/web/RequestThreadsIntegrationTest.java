package dev.fvdisk.web;

import static org.assertj.core.api.Assertions.assertThat;

import jakarta.servlet.Filter;
import jakarta.servlet.http.HttpServletResponse;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.TestConfiguration;
import org.springframework.boot.thread.Threading;
import org.springframework.boot.web.servlet.FilterRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.core.Ordered;
import org.springframework.core.env.Environment;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

/**
 * The thread model: Tomcat's pool of platform threads by default, a virtual thread per request when
 * {@code spring.threads.virtual.enabled} is true on Java 21 or later (docs/performance.md, "Request
 * threads"; CI runs the suite a second time that way). A filter ahead of everything names the
 * request's thread in a response header, so this fails if anything in the service's own web setup
 * replaced the executor Spring Boot gives Tomcat.
 */
class RequestThreadsIntegrationTest extends ApiTestSupport {

  private static final String THREAD_HEADER = "X-Test-Request-Thread";

  /**
   * Its own data directory: the extra filter makes this a server of its own, and two servers may
   * not share a data directory (the second would be refused at start).
   */
  @DynamicPropertySource
  static void ownDataDir(DynamicPropertyRegistry registry) throws java.io.IOException {
    java.nio.file.Path dir =
        java.nio.file.Files.createTempDirectory(
            java.nio.file.Files.createDirectories(java.nio.file.Path.of("target", "it-data")),
            "threads-");
    registry.add("fvdisk.test.data-dir", dir::toString);
  }

  @TestConfiguration
  static class ThreadNaming {
    @Bean
    FilterRegistrationBean<Filter> threadNamingFilter() {
      Filter filter =
          (request, response, chain) -> {
            ((HttpServletResponse) response)
                .setHeader(THREAD_HEADER, Thread.currentThread().toString());
            chain.doFilter(request, response);
          };
      FilterRegistrationBean<Filter> registration = new FilterRegistrationBean<>(filter);
      registration.setOrder(Ordered.HIGHEST_PRECEDENCE);
      return registration;
    }
  }

  @Autowired Environment environment;

  @Test
  void a_ranged_read_runs_on_the_configured_kind_of_thread() {
    String name = createImage("threads", MIB);
    String thread =
        raw()
            .header("Range", "bytes=0-4095")
            .get(IMAGES + "/" + name + "/data")
            .then()
            .statusCode(206)
            .extract()
            .header(THREAD_HEADER);
    if (Threading.VIRTUAL.isActive(environment)) {
      assertThat(thread).startsWith("VirtualThread[");
    } else {
      assertThat(thread).startsWith("Thread[").contains("exec");
    }
  }
}
