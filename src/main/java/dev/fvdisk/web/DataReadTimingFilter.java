package dev.fvdisk.web;

import io.micrometer.common.KeyValue;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tag;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import io.micrometer.observation.Observation;
import jakarta.servlet.FilterChain;
import jakarta.servlet.RequestDispatcher;
import jakarta.servlet.ServletException;
import jakarta.servlet.http.HttpFilter;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.springframework.http.server.observation.DefaultServerRequestObservationConvention;
import org.springframework.http.server.observation.ServerRequestObservationContext;
import org.springframework.http.server.observation.ServerRequestObservationConvention;
import org.springframework.web.filter.ServerHttpObservationFilter;

/**
 * Records {@code http.server.requests} for the ranged reads {@link RangeReadFilter} takes, in place
 * of Spring's observation of them.
 *
 * <p>Why: observing a request (a context, the key values computed from it, a timer looked up by
 * those tags, and a long-task timer started and stopped) took about a fifth of the request thread's
 * CPU on a 4 KiB read (docs/performance.md, "The HTTP level"). The reads the filter answers all get
 * the same tags, so one timer made at start records them; {@link #observed} tells Spring's registry
 * to leave these requests alone.
 *
 * <p>The series and tags stay those of the observation: this filter puts a context where Spring's
 * observation filter would, so Spring MVC (when the read goes on to the controller) and {@link
 * RangeReadFilter} set its path pattern and a handled exception as usual, and any answer but the
 * filter's own 206 gets its tags from Spring's convention. It runs right after Spring's observation
 * filter, before Spring Security, so refused reads are counted too. What these reads no longer get
 * is {@code http.server.requests.active}.
 */
final class DataReadTimingFilter extends HttpFilter {

  private static final String NAME = "http.server.requests";
  private static final ServerRequestObservationConvention CONVENTION =
      new DefaultServerRequestObservationConvention();

  private final transient MeterRegistry registry;
  private final transient Timer answered;

  DataReadTimingFilter(MeterRegistry registry) {
    this.registry = registry;
    this.answered =
        Timer.builder(NAME)
            .tags(
                Tags.of(
                    Tag.of("error", "none"),
                    Tag.of("exception", "none"),
                    Tag.of("method", "GET"),
                    Tag.of("outcome", "SUCCESS"),
                    Tag.of("status", "206"),
                    Tag.of("uri", RangeReadFilter.PATTERN)))
            .register(registry);
  }

  /**
   * For Spring's observation registry: false for the requests {@link RangeReadFilter} takes, which
   * this filter times.
   */
  static boolean observed(String name, Observation.Context context) {
    return !(NAME.equals(name)
        && context instanceof ServerRequestObservationContext request
        && RangeReadFilter.takes(request.getCarrier()));
  }

  @Override
  protected void doFilter(
      HttpServletRequest request, HttpServletResponse response, FilterChain chain)
      throws IOException, ServletException {
    if (!RangeReadFilter.takes(request)) {
      chain.doFilter(request, response);
      return;
    }
    long start = System.nanoTime();
    ServerRequestObservationContext context =
        new ServerRequestObservationContext(request, response);
    request.setAttribute(
        ServerHttpObservationFilter.CURRENT_OBSERVATION_CONTEXT_ATTRIBUTE, context);
    try {
      chain.doFilter(request, response);
    } catch (IOException | ServletException | RuntimeException e) {
      context.setError(e instanceof ServletException && e.getCause() != null ? e.getCause() : e);
      throw e;
    } finally {
      if (context.getError() == null
          && request.getAttribute(RequestDispatcher.ERROR_EXCEPTION) instanceof Throwable error) {
        response.setStatus(HttpServletResponse.SC_INTERNAL_SERVER_ERROR);
        context.setError(error);
      }
      long nanos = System.nanoTime() - start;
      if (context.getError() == null
          && response.getStatus() == HttpServletResponse.SC_PARTIAL_CONTENT
          && RangeReadFilter.PATTERN.equals(context.getPathPattern())) {
        answered.record(nanos, TimeUnit.NANOSECONDS);
      } else {
        record(context, nanos);
      }
    }
  }

  /** Records an answer with the tags Spring's observation would have given it. */
  private void record(ServerRequestObservationContext context, long nanos) {
    List<Tag> tags = new ArrayList<>();
    for (KeyValue keyValue : CONVENTION.getLowCardinalityKeyValues(context)) {
      tags.add(Tag.of(keyValue.getKey(), keyValue.getValue()));
    }
    Throwable error = context.getError();
    tags.add(Tag.of("error", error == null ? "none" : error.getClass().getSimpleName()));
    Timer.builder(NAME).tags(tags).register(registry).record(nanos, TimeUnit.NANOSECONDS);
  }
}
