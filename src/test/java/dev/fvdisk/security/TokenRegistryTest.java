package dev.fvdisk.security;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import javax.security.auth.x500.X500Principal;
import org.junit.jupiter.api.Test;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.boot.context.properties.source.ConfigurationPropertySources;
import org.springframework.core.env.StandardEnvironment;
import org.springframework.core.env.SystemEnvironmentPropertySource;

/** Token configuration checks, lookup by secret, and image patterns; no Spring. */
class TokenRegistryTest {

  private static SecurityProperties.Token token(
      String name, String secret, String sha256, Role role, String... images) {
    return new SecurityProperties.Token(
        name, secret, sha256, role, images.length == 0 ? List.of("*") : List.of(images), null);
  }

  private static TokenRegistry registry(SecurityProperties.Token... tokens) {
    return TokenRegistry.of(new SecurityProperties(List.of(tokens), false));
  }

  @Test
  void finds_a_token_by_its_secret_or_by_the_digest_of_it() {
    String hex = HexFormat.of().formatHex(TokenRegistry.sha256("hashed-secret"));
    TokenRegistry registry =
        registry(
            token("plain", "plain-secret", null, Role.ADMIN),
            token("hashed", null, hex.toUpperCase(java.util.Locale.ROOT), Role.READER));

    assertThat(registry.find("plain-secret")).map(AccessToken::name).contains("plain");
    assertThat(registry.find("hashed-secret")).map(AccessToken::name).contains("hashed");
    assertThat(registry.find("plain-secreT")).isEmpty();
    assertThat(registry.find("")).isEmpty();
  }

  @Test
  void keeps_no_plain_secret() {
    TokenRegistry registry = registry(token("a", "the-secret", null, Role.ADMIN));
    AccessToken stored = registry.tokens().get(0);
    assertThat(stored.secretSha256()).isEqualTo(TokenRegistry.sha256("the-secret"));
    assertThat(stored.toString()).doesNotContain("the-secret");
    assertThat(token("a", "the-secret", null, Role.ADMIN).toString()).doesNotContain("the-secret");
  }

  @Test
  void names_the_token_whose_configuration_is_wrong() {
    assertThatThrownBy(() -> registry(token("x", "s", "ab", Role.ADMIN)))
        .hasMessageContaining("fvdisk.security.tokens[0] (x)")
        .hasMessageContaining("not both");
    assertThatThrownBy(() -> registry(token("x", null, null, Role.ADMIN)))
        .hasMessageContaining("not neither");
    assertThatThrownBy(() -> registry(token("x", null, "abc", Role.ADMIN)))
        .hasMessageContaining("64 hex digits");
    assertThatThrownBy(() -> registry(token("x", "s", null, null)))
        .hasMessageContaining("role is required");
    assertThatThrownBy(
            () -> registry(token("x", "s1", null, Role.ADMIN), token("x", "s2", null, Role.READER)))
        .hasMessageContaining("tokens[1]")
        .hasMessageContaining("already named x");
    assertThatThrownBy(
            () ->
                registry(
                    token("a", "same", null, Role.ADMIN), token("b", "same", null, Role.READER)))
        .hasMessageContaining("same secret");
    assertThatThrownBy(() -> registry(token("x", "s", null, Role.ADMIN, " ")))
        .hasMessageContaining("at least one pattern");
  }

  @Test
  void finds_the_token_a_client_certificate_acts_as_by_its_canonical_subject() {
    TokenRegistry registry =
        registry(
            new SecurityProperties.Token(
                "host", "s1", null, Role.WRITER, List.of("vm-*"), "CN=vm-host-1, O=Example"),
            token("plain", "s2", null, Role.ADMIN));
    assertThat(registry.forCertificateSubject(new X500Principal("cn=vm-host-1,o=Example")))
        .map(AccessToken::name)
        .contains("host");
    assertThat(registry.forCertificateSubject(new X500Principal("CN=vm-host-2,O=Example")))
        .isEmpty();
    assertThatThrownBy(
            () ->
                registry(
                    new SecurityProperties.Token(
                        "bad", "s", null, Role.READER, List.of("*"), "no distinguished name")))
        .hasMessageContaining("fvdisk.security.tokens[0] (bad)")
        .hasMessageContaining("certificate-subject");
    assertThatThrownBy(
            () ->
                registry(
                    new SecurityProperties.Token(
                        "a", "s1", null, Role.READER, List.of("*"), "CN=x"),
                    new SecurityProperties.Token(
                        "b", "s2", null, Role.READER, List.of("*"), "CN=x")))
        .hasMessageContaining("(b)")
        .hasMessageContaining("same certificate-subject");
  }

  @Test
  void unnamed_tokens_are_named_by_their_position() {
    TokenRegistry registry = registry(token(null, "s0", null, Role.ADMIN));
    assertThat(registry.tokens().get(0).name()).isEqualTo("token-0");
  }

  @Test
  void image_patterns_match_whole_names_only() {
    ImageGlob glob = ImageGlob.of(List.of("vm-*", "db-?", "golden.v1"));
    assertThat(glob.matches("vm-1")).isTrue();
    assertThat(glob.matches("vm-")).isTrue();
    assertThat(glob.matches("db-1")).isTrue();
    assertThat(glob.matches("golden.v1")).isTrue();
    assertThat(glob.matches("xvm-1")).isFalse();
    assertThat(glob.matches("db-12")).isFalse();
    assertThat(glob.matches("goldenxv1")).isFalse();
    assertThat(ImageGlob.ANY.matches("anything")).isTrue();
  }

  /** The container passes tokens this way; docs/security.md shows these exact names. */
  @Test
  void tokens_bind_from_environment_variables() {
    String hex = HexFormat.of().formatHex(TokenRegistry.sha256("from-env"));
    Map<String, Object> environment =
        Map.of(
            "FVDISK_SECURITY_TOKENS_0_NAME", "ops",
            "FVDISK_SECURITY_TOKENS_0_SECRETSHA256", hex,
            "FVDISK_SECURITY_TOKENS_0_ROLE", "admin",
            "FVDISK_SECURITY_TOKENS_1_SECRET", "host-secret",
            "FVDISK_SECURITY_TOKENS_1_ROLE", "writer",
            "FVDISK_SECURITY_TOKENS_1_IMAGES", "vm-1-*,golden-*",
            "FVDISK_SECURITY_ALLOWUNAUTHENTICATED", "true");
    Binder binder =
        new Binder(
            ConfigurationPropertySources.from(
                new SystemEnvironmentPropertySource(
                    StandardEnvironment.SYSTEM_ENVIRONMENT_PROPERTY_SOURCE_NAME, environment)));
    SecurityProperties properties = binder.bind("fvdisk.security", SecurityProperties.class).get();

    assertThat(properties.allowUnauthenticated()).isTrue();
    TokenRegistry registry = TokenRegistry.of(properties);
    assertThat(registry.find("from-env")).map(AccessToken::name).contains("ops");
    AccessToken host = registry.find("host-secret").orElseThrow();
    assertThat(host.role()).isEqualTo(Role.WRITER);
    assertThat(host.mayTouch("vm-1-root")).isTrue();
    assertThat(host.mayTouch("golden-debian")).isTrue();
    assertThat(host.mayTouch("vm-2-root")).isFalse();
  }

  @Test
  void roles_include_the_roles_below_them() {
    assertThat(Role.ADMIN.grantedAuthorities())
        .extracting(a -> a.getAuthority())
        .containsExactlyInAnyOrder("ROLE_READER", "ROLE_WRITER", "ROLE_ADMIN", "ROLE_MONITOR");
    assertThat(Role.WRITER.grantedAuthorities())
        .extracting(a -> a.getAuthority())
        .containsExactlyInAnyOrder("ROLE_READER", "ROLE_WRITER");
    assertThat(Role.MONITOR.grantedAuthorities())
        .extracting(a -> a.getAuthority())
        .containsExactly("ROLE_MONITOR");
    assertThat(Role.READER.grantedAuthorities())
        .extracting(a -> a.getAuthority())
        .containsExactly("ROLE_READER");
  }

  @Test
  void a_role_includes_exactly_the_roles_whose_authority_it_grants() {
    for (Role role : Role.values()) {
      for (Role other : Role.values()) {
        assertThat(role.includes(other))
            .as("%s includes %s", role, other)
            .isEqualTo(
                role.grantedAuthorities().stream()
                    .anyMatch(a -> a.getAuthority().equals(other.authority())));
      }
    }
    assertThat(Role.READER.includes(Role.WRITER)).isFalse();
    assertThat(Role.WRITER.includes(Role.ADMIN)).isFalse();
    assertThat(Role.MONITOR.includes(Role.READER)).isFalse();
  }
}
