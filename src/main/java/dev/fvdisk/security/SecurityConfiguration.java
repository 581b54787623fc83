package dev.fvdisk.security;

import dev.fvdisk.service.InvalidRequestException;
import jakarta.servlet.DispatcherType;
import org.springframework.beans.factory.annotation.Qualifier;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.env.Environment;
import org.springframework.http.HttpMethod;
import org.springframework.security.authentication.ProviderManager;
import org.springframework.security.config.ObjectPostProcessor;
import org.springframework.security.config.annotation.web.builders.HttpSecurity;
import org.springframework.security.config.annotation.web.configuration.WebSecurityCustomizer;
import org.springframework.security.config.annotation.web.configurers.AbstractHttpConfigurer;
import org.springframework.security.config.http.SessionCreationPolicy;
import org.springframework.security.config.observation.SecurityObservationSettings;
import org.springframework.security.web.SecurityFilterChain;
import org.springframework.security.web.authentication.AnonymousAuthenticationFilter;
import org.springframework.security.web.authentication.AuthenticationEntryPointFailureHandler;
import org.springframework.security.web.authentication.AuthenticationFilter;
import org.springframework.security.web.firewall.StrictHttpFirewall;
import org.springframework.security.web.header.HeaderWriterFilter;
import org.springframework.security.web.header.writers.ContentSecurityPolicyHeaderWriter;
import org.springframework.security.web.header.writers.DelegatingRequestMatcherHeaderWriter;
import org.springframework.security.web.servlet.util.matcher.PathPatternRequestMatcher;
import org.springframework.web.servlet.HandlerExceptionResolver;

/**
 * The filter chain: token authentication (Basic or Bearer), then authorization by request matcher.
 * The rules, first match wins:
 *
 * <table>
 *   <caption>Who may do what</caption>
 *   <tr><th>request</th><th>needs</th></tr>
 *   <tr><td>HEAD, GET, OPTIONS on images</td><td>reader, and the image in scope</td></tr>
 *   <tr><td>PUT data or sectors, PATCH data, POST a snapshot</td>
 *       <td>writer, and the image in scope</td></tr>
 *   <tr><td>POST images, anything else on an image (such as DELETE of a snapshot)</td>
 *       <td>admin, and the image in scope</td></tr>
 *   <tr><td>{@code /actuator/health} (status only)</td><td>nothing</td></tr>
 *   <tr><td>actuator endpoints that dump memory, environment or configuration</td>
 *       <td>refused to everyone</td></tr>
 *   <tr><td>every other {@code /actuator/**}</td><td>monitor (admin includes it)</td></tr>
 *   <tr><td>the contract and Swagger UI</td><td>nothing</td></tr>
 *   <tr><td>the console ({@code /console/}), its page and assets</td><td>any valid token</td></tr>
 *   <tr><td>anything else</td><td>any valid token</td></tr>
 * </table>
 *
 * <p>The console gets no rights of its own: its page only needs a token, and what it shows or
 * changes goes through the API and actuator rules above with the same token, which the browser
 * resends on the page's own requests once it has answered the Basic challenge. Its answers carry a
 * strict Content-Security-Policy ({@link #CONSOLE_POLICY}).
 *
 * <p>Stateless: no session, no cookie, so no CSRF token either. The one browser risk left, a
 * cross-site form riding on cached Basic credentials, cannot send the JSON or binary bodies the API
 * takes (415) and cannot send PUT, PATCH or DELETE at all.
 */
@Configuration(proxyBeanMethods = false)
@EnableConfigurationProperties(SecurityProperties.class)
class SecurityConfiguration {

  private static final String IMAGES = "/api/v1/images";
  private static final String IMAGE = IMAGES + "/{" + ImageAuthorization.NAME + "}";

  /** Endpoints that would hand out memory, secrets or configuration; never served. */
  private static final String[] DUMPS = {
    "/actuator/heapdump",
    "/actuator/threaddump",
    "/actuator/env",
    "/actuator/env/**",
    "/actuator/configprops",
    "/actuator/configprops/**",
    "/actuator/beans",
    "/actuator/conditions",
    "/actuator/mappings",
    "/actuator/logfile",
    "/actuator/shutdown",
    "/actuator/sbom/**"
  };

  /** The console's page and assets; the API answers JSON, which no browser runs. */
  static final String CONSOLE = "/console/**";

  /**
   * What the console's pages may load and run: only its own script, style sheet and requests to
   * this origin; no inline script or style (the script sets styles through the CSSOM, which the
   * policy allows), no plug-ins, no framing, no foreign form targets.
   */
  static final String CONSOLE_POLICY =
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
          + " connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

  /**
   * Spring Security would wrap each filter of the chain, and each authorization, in an observation
   * of its own: on a 4 KiB read that cost more CPU than the read (docs/performance.md). The request
   * metrics ({@code http.server.requests}) and fvdisk's own meters are not affected.
   */
  @Bean
  SecurityObservationSettings noSecurityObservations() {
    return SecurityObservationSettings.noObservations();
  }

  /**
   * The firewall lets every method through, so that Spring MVC answers one that no path takes
   * ({@code QUERY}, {@code FOO}, {@code TRACE}) with 405 and the path's {@code Allow} header, where
   * the firewall would answer a bare 400; what a method may do is the authorization rules'
   * business. Requests the firewall does refuse (a path with {@code //} or {@code ;}, say) are
   * answered as problems that say why.
   */
  @Bean
  WebSecurityCustomizer firewall(
      @Qualifier("handlerExceptionResolver") HandlerExceptionResolver resolver) {
    StrictHttpFirewall firewall = new StrictHttpFirewall();
    firewall.setUnsafeAllowAnyHttpMethod(true);
    return web ->
        web.httpFirewall(firewall)
            .requestRejectedHandler(
                (request, response, rejected) ->
                    resolver.resolveException(
                        request,
                        response,
                        null,
                        new InvalidRequestException(
                            "the request was refused: " + rejected.getMessage())));
  }

  @Bean
  TokenRegistry tokenRegistry(SecurityProperties properties) {
    return TokenRegistry.of(properties);
  }

  @Bean
  TokenAuthenticationProvider tokenAuthenticationProvider(TokenRegistry tokens) {
    return new TokenAuthenticationProvider(tokens);
  }

  @Bean
  ImageScope imageScope() {
    return new ImageScope();
  }

  @Bean
  ListenAddressGuard listenAddressGuard(
      TokenRegistry tokens, SecurityProperties properties, Environment environment) {
    return new ListenAddressGuard(tokens, properties.allowUnauthenticated(), environment);
  }

  @Bean
  SecurityFilterChain apiSecurity(
      HttpSecurity http,
      TokenRegistry tokens,
      TokenAuthenticationProvider provider,
      @Qualifier("handlerExceptionResolver") HandlerExceptionResolver resolver)
      throws Exception {
    SecurityProblems problems = new SecurityProblems(resolver);
    http.csrf(AbstractHttpConfigurer::disable)
        .formLogin(AbstractHttpConfigurer::disable)
        .httpBasic(AbstractHttpConfigurer::disable)
        .logout(AbstractHttpConfigurer::disable)
        .requestCache(AbstractHttpConfigurer::disable)
        .sessionManagement(s -> s.sessionCreationPolicy(SessionCreationPolicy.STATELESS))
        // Written when the request comes in rather than when the answer commits: committing
        // lazily needs a response wrapper whose output stream lacks write(ByteBuffer), and the
        // servlet API's fallback copies every buffer it is given into a new array (a 1 MiB
        // allocation per 1 MiB read).
        .headers(
            headers ->
                headers
                    .withObjectPostProcessor(
                        new ObjectPostProcessor<HeaderWriterFilter>() {
                          @Override
                          public <F extends HeaderWriterFilter> F postProcess(F filter) {
                            filter.setShouldWriteHeadersEagerly(true);
                            return filter;
                          }
                        })
                    // Only on the console: Swagger UI's page would not run under this policy.
                    .addHeaderWriter(
                        new DelegatingRequestMatcherHeaderWriter(
                            PathPatternRequestMatcher.withDefaults().matcher(CONSOLE),
                            new ContentSecurityPolicyHeaderWriter(CONSOLE_POLICY))))
        .exceptionHandling(e -> e.authenticationEntryPoint(problems).accessDeniedHandler(problems))
        .authorizeHttpRequests(
            requests ->
                requests
                    // An error page or the rest of a streamed answer belongs to a request that
                    // was authorized when it came in.
                    .dispatcherTypeMatchers(DispatcherType.ERROR, DispatcherType.ASYNC)
                    .permitAll()
                    // The image rules first: the data path is the busy one, and each rule
                    // tried before the matching one costs a path match per request. The other
                    // rules' paths (actuator, contract) never overlap the image paths, so the
                    // order between the two groups changes no decision.
                    .requestMatchers(HttpMethod.POST, IMAGES)
                    .access(ImageAuthorization.requires(Role.ADMIN))
                    .requestMatchers(IMAGES)
                    .access(ImageAuthorization.requires(Role.READER))
                    .requestMatchers(HttpMethod.HEAD, IMAGE + "/**")
                    .access(ImageAuthorization.requires(Role.READER))
                    .requestMatchers(HttpMethod.GET, IMAGE + "/**")
                    .access(ImageAuthorization.requires(Role.READER))
                    .requestMatchers(HttpMethod.OPTIONS, IMAGE + "/**")
                    .access(ImageAuthorization.requires(Role.READER))
                    .requestMatchers(HttpMethod.PUT, IMAGE + "/data")
                    .access(ImageAuthorization.requires(Role.WRITER))
                    .requestMatchers(HttpMethod.PUT, IMAGE + "/sectors/*")
                    .access(ImageAuthorization.requires(Role.WRITER))
                    .requestMatchers(HttpMethod.PATCH, IMAGE + "/data")
                    .access(ImageAuthorization.requires(Role.WRITER))
                    // Taking a snapshot frees nothing and loses nothing, so a writer (a VM host
                    // before a risky change) may; deleting one is lifecycle, left to admin below.
                    .requestMatchers(HttpMethod.POST, IMAGE + "/snapshots")
                    .access(ImageAuthorization.requires(Role.WRITER))
                    .requestMatchers(IMAGE + "/**")
                    .access(ImageAuthorization.requires(Role.ADMIN))
                    .requestMatchers("/actuator/health")
                    .permitAll()
                    .requestMatchers(DUMPS)
                    .denyAll()
                    .requestMatchers("/actuator", "/actuator/**")
                    .hasRole(Role.MONITOR.name())
                    .requestMatchers(
                        "/openapi/**", "/swagger-ui.html", "/swagger-ui/**", "/v3/api-docs/**")
                    .permitAll()
                    // The same as anyRequest below, spelled out: the console is for token holders.
                    .requestMatchers(CONSOLE)
                    .authenticated()
                    .anyRequest()
                    .authenticated());
    if (tokens.isEmpty()) {
      http.addFilterBefore(new TrustedLoopbackFilter(), AnonymousAuthenticationFilter.class);
    } else {
      AuthenticationFilter authentication =
          new AuthenticationFilter(new ProviderManager(provider), new TokenCredentialsConverter());
      // Stateless: on success carry on down the chain (the default would redirect).
      authentication.setSuccessHandler((request, response, auth) -> {});
      authentication.setFailureHandler(new AuthenticationEntryPointFailureHandler(problems));
      http.addFilterBefore(authentication, AnonymousAuthenticationFilter.class);
    }
    return http.build();
  }
}
