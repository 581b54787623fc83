package dev.fvdisk.web;

import org.springframework.context.annotation.Configuration;
import org.springframework.web.servlet.config.annotation.ViewControllerRegistry;
import org.springframework.web.servlet.config.annotation.WebMvcConfigurer;

/**
 * The operator console: static files under {@code static/console/} (a page, a style sheet, a
 * script) that read and change everything through the public API and actuator endpoints, with the
 * token the browser already holds. Spring Boot serves the files themselves; the page's address is
 * its folder, which the resource handler would not answer, so it is mapped here. The security
 * configuration protects and labels {@code /console/**} (docs/console.md).
 */
@Configuration(proxyBeanMethods = false)
class ConsoleConfiguration implements WebMvcConfigurer {

  @Override
  public void addViewControllers(ViewControllerRegistry registry) {
    // Relative asset links in the page resolve against the folder, so the page lives at the slash.
    registry.addRedirectViewController("/console", "/console/");
    registry.addViewController("/console/").setViewName("forward:/console/index.html");
  }
}
