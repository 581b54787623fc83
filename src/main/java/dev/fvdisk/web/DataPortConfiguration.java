package dev.fvdisk.web;

import dev.fvdisk.security.TokenRegistry;
import dev.fvdisk.service.ImageService;
import io.micrometer.core.instrument.MeterRegistry;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.boot.autoconfigure.condition.ConditionalOnBooleanProperty;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.env.Environment;

/** The data port ({@link DataPortServer}), when {@code fvdisk.http-data.enabled=true}. */
@Configuration(proxyBeanMethods = false)
@EnableConfigurationProperties(DataPortProperties.class)
@ConditionalOnBooleanProperty(name = "fvdisk.http-data.enabled")
class DataPortConfiguration {

  /**
   * Reads and writes streaming at once on the data port; more wait for one to finish. The port has
   * buffers of its own, so that clients holding its requests (a slow reader or writer keeps its
   * buffer until the stall timeout) can never take the main port's.
   */
  static final int BUFFERS = 64;

  @Bean
  DataPort dataPort(
      ImageService images,
      TokenRegistry tokens,
      DataPortProperties properties,
      Environment environment,
      ObjectProvider<MeterRegistry> meters) {
    return new DataPort(
        images,
        tokens,
        new DiskStreams(images.limits().ioBufferBytes(), BUFFERS),
        properties,
        environment.getProperty("fvdisk.security.allow-unauthenticated", Boolean.class, false),
        meters.getIfAvailable());
  }
}
