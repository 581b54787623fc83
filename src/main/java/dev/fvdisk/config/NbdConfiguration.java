package dev.fvdisk.config;

import dev.fvdisk.security.TokenRegistry;
import dev.fvdisk.service.ImageService;
import io.micrometer.core.instrument.MeterRegistry;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.boot.autoconfigure.condition.ConditionalOnBooleanProperty;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.boot.ssl.SslBundles;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * Starts the NBD listener with the service and stops it before the images close, so that every
 * write an NBD client was answered is flushed at shutdown.
 */
@Configuration(proxyBeanMethods = false)
@EnableConfigurationProperties(NbdProperties.class)
@ConditionalOnBooleanProperty(name = "fvdisk.nbd.enabled", matchIfMissing = true)
class NbdConfiguration {

  @Bean
  NbdListener nbdListener(
      ImageService images,
      NbdProperties properties,
      TokenRegistry tokens,
      SslBundles sslBundles,
      ObjectProvider<MeterRegistry> meters) {
    return new NbdListener(images, properties, tokens, sslBundles, meters.getIfAvailable());
  }
}
