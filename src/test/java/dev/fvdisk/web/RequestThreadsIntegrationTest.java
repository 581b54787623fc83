package dev.fvdisk.web;

import static org.assertj.core.api.Assertions.assertThat;

import jakarta.servlet.Filter;
import jakarta.servlet.http.HttpServletResponse;
import org.junit.jupiter.api.Test;
import org.springframework.boot.test.context.TestConfiguration;
import org.springframework.boot.web.servlet.FilterRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.core.Ordered;

/**
 * The thread model the service ships with: on Java 21 and later each request runs on a virtual
 * thread of its own, on Java 17 on Tomcat's pool of platform threads (docs/performance.md, "Request
 * threads"). A filter ahead of everything names the request's thread in a response header.
 */
class RequestThreadsIntegrationTest extends ApiTestSupport {

  private static final String THREAD_HEADER = "X-Test-Request-Thread";

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

  @Test
  void a_ranged_read_runs_on_a_virtual_thread_where_the_jdk_has_them() {
    String name = createImage("threads", MIB);
    String thread =
        raw()
            .header("Range", "bytes=0-4095")
            .get(IMAGES + "/" + name + "/data")
            .then()
            .statusCode(206)
            .extract()
            .header(THREAD_HEADER);
    if (Runtime.version().feature() >= 21) {
      assertThat(thread).startsWith("VirtualThread[");
    } else {
      assertThat(thread).startsWith("Thread[").contains("exec");
    }
  }
}
