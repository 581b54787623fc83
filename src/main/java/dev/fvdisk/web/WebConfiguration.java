package dev.fvdisk.web;

import dev.fvdisk.service.ImageService;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.observation.ObservationPredicate;
import jakarta.servlet.ServletException;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import org.apache.catalina.core.StandardHost;
import org.springframework.beans.factory.annotation.Qualifier;
import org.springframework.boot.jackson.autoconfigure.JsonMapperBuilderCustomizer;
import org.springframework.boot.tomcat.TomcatConnectorCustomizer;
import org.springframework.boot.tomcat.TomcatContextCustomizer;
import org.springframework.boot.web.servlet.FilterRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.Ordered;
import org.springframework.web.servlet.DispatcherServlet;
import org.springframework.web.servlet.HandlerExceptionResolver;
import org.springframework.web.servlet.config.annotation.WebMvcConfigurer;
import tools.jackson.databind.DeserializationFeature;
import tools.jackson.databind.cfg.CoercionAction;
import tools.jackson.databind.cfg.CoercionInputShape;
import tools.jackson.databind.type.LogicalType;

/**
 * Strict JSON reading, the web layer's filters (malformed query strings, the JSON body limit,
 * ranged reads), and the connector settings.
 */
@Configuration(proxyBeanMethods = false)
class WebConfiguration implements WebMvcConfigurer {

  private final ImageService images;

  WebConfiguration(ImageService images) {
    this.images = images;
  }

  /**
   * The contract's 400 covers wrong JSON types, so nothing is coerced: {@code "12"} is not a
   * number, {@code 1.5} not an integer, {@code 1} not a boolean, and unknown fields are errors.
   */
  @Bean
  JsonMapperBuilderCustomizer strictJson() {
    return builder ->
        builder
            .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .disable(DeserializationFeature.ACCEPT_FLOAT_AS_INT)
            .withCoercionConfig(
                LogicalType.Integer,
                c ->
                    c.setCoercion(CoercionInputShape.String, CoercionAction.Fail)
                        .setCoercion(CoercionInputShape.Float, CoercionAction.Fail)
                        .setCoercion(CoercionInputShape.Boolean, CoercionAction.Fail))
            .withCoercionConfig(
                LogicalType.Boolean,
                c ->
                    c.setCoercion(CoercionInputShape.String, CoercionAction.Fail)
                        .setCoercion(CoercionInputShape.Integer, CoercionAction.Fail))
            .withCoercionConfig(
                LogicalType.Textual,
                c ->
                    c.setCoercion(CoercionInputShape.Integer, CoercionAction.Fail)
                        .setCoercion(CoercionInputShape.Float, CoercionAction.Fail)
                        .setCoercion(CoercionInputShape.Boolean, CoercionAction.Fail));
  }

  /** The outermost filter: it closes the connection when an answer stopped part-way. */
  @Bean
  FilterRegistrationBean<CutShortAnswerFilter> cutShortAnswerFilter() {
    FilterRegistrationBean<CutShortAnswerFilter> registration =
        new FilterRegistrationBean<>(new CutShortAnswerFilter());
    registration.setOrder(Ordered.HIGHEST_PRECEDENCE);
    return registration;
  }

  /**
   * Malformed query strings, refused first of all: before Spring Security's chain (-100), whose
   * filters and everything after them may ask for parameters.
   */
  @Bean
  FilterRegistrationBean<QueryStringFilter> queryStringFilter(
      @Qualifier("handlerExceptionResolver") HandlerExceptionResolver problems) {
    FilterRegistrationBean<QueryStringFilter> registration =
        new FilterRegistrationBean<>(new QueryStringFilter(problems));
    registration.setOrder(Ordered.HIGHEST_PRECEDENCE + 1);
    return registration;
  }

  /**
   * The JSON body limit, after Spring Security (an unauthenticated client gets its 401 without its
   * body being looked at) and before anything reads a body.
   */
  @Bean
  FilterRegistrationBean<JsonBodyLimitFilter> jsonBodyLimitFilter(
      @Qualifier("handlerExceptionResolver") HandlerExceptionResolver problems) {
    FilterRegistrationBean<JsonBodyLimitFilter> registration =
        new FilterRegistrationBean<>(
            new JsonBodyLimitFilter(images.limits().maxJsonBodyBytes(), problems));
    registration.setOrder(-1);
    return registration;
  }

  /** The streaming buffers of data requests, one budget for the controller and the filter. */
  @Bean
  DiskStreams diskStreams() {
    return new DiskStreams(images.limits().ioBufferBytes());
  }

  /**
   * Ranged reads of image data, answered ahead of Spring MVC. Order 0 puts the filter after Spring
   * Security's chain (-100) and the timing filter, and before the DispatcherServlet.
   */
  @Bean
  FilterRegistrationBean<RangeReadFilter> rangeReadFilter(
      ImageService images, DiskStreams streams) {
    FilterRegistrationBean<RangeReadFilter> registration =
        new FilterRegistrationBean<>(new RangeReadFilter(images, streams));
    registration.addUrlPatterns("/api/v1/images/*");
    registration.setOrder(0);
    return registration;
  }

  /**
   * Ranged writes of image data, answered ahead of Spring MVC, in the same place as {@link
   * #rangeReadFilter}.
   */
  @Bean
  FilterRegistrationBean<RangeWriteFilter> rangeWriteFilter(
      ImageService images,
      DiskStreams streams,
      @Qualifier("handlerExceptionResolver") HandlerExceptionResolver problems) {
    FilterRegistrationBean<RangeWriteFilter> registration =
        new FilterRegistrationBean<>(new RangeWriteFilter(images, streams, problems));
    registration.addUrlPatterns("/api/v1/images/*");
    registration.setOrder(0);
    return registration;
  }

  /**
   * {@code http.server.requests} for the reads {@link RangeReadFilter} takes, at a fraction of the
   * cost of Spring's observation ({@link DataReadTimingFilter}). Right after Spring's observation
   * filter and the query-string check, before Spring Security's chain (-100), so that refused reads
   * are timed too.
   */
  @Bean
  FilterRegistrationBean<DataReadTimingFilter> dataReadTimingFilter(MeterRegistry registry) {
    FilterRegistrationBean<DataReadTimingFilter> registration =
        new FilterRegistrationBean<>(new DataReadTimingFilter(registry));
    registration.addUrlPatterns("/api/v1/images/*");
    registration.setOrder(Ordered.HIGHEST_PRECEDENCE + 2);
    return registration;
  }

  /**
   * Spring does not observe the reads {@link DataReadTimingFilter} times. Static, so that the
   * observation registry, which is made early, can have it without this configuration.
   */
  @Bean
  static ObservationPredicate rangeReadsTimedByTheirFilter() {
    return DataReadTimingFilter::observed;
  }

  /**
   * Spring MVC's dispatcher, but a {@code TRACE} is dispatched like any other method: no path takes
   * it, so it gets 405 with the path's {@code Allow} header. The servlet API's own {@code doTrace}
   * would echo the request back, its headers and credentials included, and Tomcat's refusal lists
   * every method the servlet has. The other settings are Spring Boot's defaults.
   */
  @Bean(name = "dispatcherServlet")
  DispatcherServlet dispatcherServlet() {
    DispatcherServlet servlet = new TraceDispatchingServlet();
    servlet.setDispatchOptionsRequest(true);
    servlet.setPublishEvents(true);
    servlet.setEnableLoggingRequestDetails(false);
    return servlet;
  }

  private static final class TraceDispatchingServlet extends DispatcherServlet {
    private static final long serialVersionUID = 1L;

    @Override
    protected void doTrace(HttpServletRequest request, HttpServletResponse response)
        throws ServletException, IOException {
      processRequest(request, response);
    }
  }

  /**
   * Errors Tomcat answers on its own, before a request reaches the application, come out as
   * problems too. The host creates its error valve from this class name when it starts, after every
   * other valve is in place, so it is the one that writes the answer.
   */
  @Bean
  TomcatContextCustomizer problemErrorPages() {
    return context ->
        ((StandardHost) context.getParent())
            .setErrorReportValveClass(ProblemReportValve.class.getName());
  }

  /**
   * Tomcat moves bodies between the socket and the servlet streams through a per-connection read
   * and write buffer, 8 KiB on the heap by default: 128 system calls for each MiB, and the JDK
   * copies every heap buffer into a temporary direct one on its way to the socket. 64 KiB direct
   * buffers cut the calls eightfold and drop that copy. Each open connection holds the two buffers
   * (128 KiB of native memory), which is why {@code server.tomcat.max-connections} is bounded.
   */
  @Bean
  TomcatConnectorCustomizer largerSocketWrites() {
    return connector -> {
      // TRACE goes on to Spring MVC, which answers 405 with the Allow header of the path (Tomcat
      // would answer it with every method the servlet has, as an HTML page).
      connector.setAllowTrace(true);
      connector.setProperty("socket.appWriteBufSize", "65536");
      connector.setProperty("socket.appReadBufSize", "65536");
      connector.setProperty("socket.directBuffer", "true");
    };
  }
}
