package dev.fvdisk.web;

import io.swagger.v3.core.util.Yaml;
import io.swagger.v3.oas.models.OpenAPI;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import org.springdoc.core.customizers.OpenApiCustomizer;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.io.ClassPathResource;

/**
 * springdoc's {@code /v3/api-docs}, where tools look for a Spring service's contract, serves the
 * committed one ({@code openapi/openapi.yaml}, as JSON) instead of an empty document generated from
 * the controllers. The committed file stays the one description: it is what the tests validate
 * every request and answer against, and what Swagger UI shows.
 */
@Configuration(proxyBeanMethods = false)
class ContractDocument {

  static final String CONTRACT = "static/openapi/openapi.yaml";

  @Bean
  OpenApiCustomizer committedContract() {
    OpenAPI committed;
    try (InputStream in = new ClassPathResource(CONTRACT).getInputStream()) {
      committed = Yaml.mapper().readValue(in, OpenAPI.class);
    } catch (IOException e) {
      throw new UncheckedIOException("the committed contract " + CONTRACT + " cannot be read", e);
    }
    return generated -> {
      generated.setInfo(committed.getInfo());
      generated.setServers(committed.getServers());
      generated.setTags(committed.getTags());
      generated.setSecurity(committed.getSecurity());
      generated.setPaths(committed.getPaths());
      generated.setComponents(committed.getComponents());
      generated.setExternalDocs(committed.getExternalDocs());
    };
  }
}
