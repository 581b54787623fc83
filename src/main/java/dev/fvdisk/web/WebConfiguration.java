package dev.fvdisk.web;

import dev.fvdisk.service.ImageService;
import dev.fvdisk.service.PayloadTooLargeException;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import org.springframework.boot.jackson.autoconfigure.JsonMapperBuilderCustomizer;
import org.springframework.boot.tomcat.TomcatConnectorCustomizer;
import org.springframework.boot.web.servlet.FilterRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.http.MediaType;
import org.springframework.web.servlet.HandlerInterceptor;
import org.springframework.web.servlet.config.annotation.InterceptorRegistry;
import org.springframework.web.servlet.config.annotation.WebMvcConfigurer;
import tools.jackson.databind.DeserializationFeature;
import tools.jackson.databind.cfg.CoercionAction;
import tools.jackson.databind.cfg.CoercionInputShape;
import tools.jackson.databind.type.LogicalType;

/**
 * Strict JSON reading, the JSON body limit, the ranged-read filter, and the connector settings for
 * large bodies.
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

  /**
   * Ranged reads of image data, answered ahead of Spring MVC. Order 0 puts the filter after Spring
   * Security's chain (-100) and the metrics filter, and before the DispatcherServlet.
   */
  @Bean
  FilterRegistrationBean<RangeReadFilter> rangeReadFilter(ImageService images) {
    FilterRegistrationBean<RangeReadFilter> registration =
        new FilterRegistrationBean<>(new RangeReadFilter(images));
    registration.addUrlPatterns("/api/v1/images/*");
    registration.setOrder(0);
    return registration;
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
      connector.setProperty("socket.appWriteBufSize", "65536");
      connector.setProperty("socket.appReadBufSize", "65536");
      connector.setProperty("socket.directBuffer", "true");
    };
  }

  @Override
  public void addInterceptors(InterceptorRegistry registry) {
    registry.addInterceptor(new JsonBodyLimit(images.limits().maxJsonBodyBytes()));
  }

  /** Refuses JSON bodies over the limit before anything reads them. */
  private record JsonBodyLimit(long maxBytes) implements HandlerInterceptor {
    @Override
    public boolean preHandle(
        HttpServletRequest request, HttpServletResponse response, Object handler) {
      String contentType = request.getContentType();
      long length = request.getContentLengthLong();
      if (contentType != null && length > maxBytes && isJson(contentType)) {
        throw new PayloadTooLargeException(length, maxBytes);
      }
      return true;
    }

    private static boolean isJson(String contentType) {
      try {
        MediaType type = MediaType.parseMediaType(contentType);
        return type.getSubtype().equals("json") || type.getSubtype().endsWith("+json");
      } catch (IllegalArgumentException e) {
        return false;
      }
    }
  }
}
