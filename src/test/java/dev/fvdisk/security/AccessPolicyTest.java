package dev.fvdisk.security;

import static org.assertj.core.api.Assertions.assertThat;

import dev.fvdisk.security.AccessPolicy.Decision;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The access decision on its own: roles, image patterns, and which refusal hides the image. */
class AccessPolicyTest {

  private static AccessToken token(Role role, String... images) {
    return new AccessToken("t", role, ImageGlob.of(List.of(images)), new byte[32]);
  }

  @Test
  void a_token_with_the_role_is_granted_the_images_its_patterns_match() {
    AccessToken writer = token(Role.WRITER, "vm-*", "golden");
    assertThat(AccessPolicy.decide(writer, Role.WRITER, "vm-1")).isEqualTo(Decision.GRANTED);
    assertThat(AccessPolicy.decide(writer, Role.READER, "golden")).isEqualTo(Decision.GRANTED);
  }

  @Test
  void an_image_outside_the_patterns_is_hidden_not_denied() {
    AccessToken reader = token(Role.READER, "vm-?");
    assertThat(AccessPolicy.decide(reader, Role.READER, "vm-12")).isEqualTo(Decision.HIDDEN);
    assertThat(AccessPolicy.decide(reader, Role.READER, "other")).isEqualTo(Decision.HIDDEN);
  }

  @Test
  void a_missing_role_is_denied_whatever_the_image_so_the_refusal_tells_nothing() {
    AccessToken reader = token(Role.READER, "vm-*");
    assertThat(AccessPolicy.decide(reader, Role.WRITER, "vm-1")).isEqualTo(Decision.DENIED);
    assertThat(AccessPolicy.decide(reader, Role.WRITER, "other")).isEqualTo(Decision.DENIED);
    AccessToken monitor = token(Role.MONITOR, "*");
    assertThat(AccessPolicy.decide(monitor, Role.READER, "vm-1")).isEqualTo(Decision.DENIED);
  }

  @Test
  void no_token_is_denied() {
    assertThat(AccessPolicy.decide(null, Role.READER, "vm-1")).isEqualTo(Decision.DENIED);
    assertThat(AccessPolicy.decide(null, Role.READER, null)).isEqualTo(Decision.DENIED);
  }

  @Test
  void an_operation_on_no_image_in_particular_needs_only_the_role() {
    assertThat(AccessPolicy.decide(token(Role.READER, "vm-*"), Role.READER, null))
        .isEqualTo(Decision.GRANTED);
    assertThat(AccessPolicy.decide(token(Role.ADMIN, "vm-*"), Role.ADMIN, null))
        .isEqualTo(Decision.GRANTED);
  }

  @Test
  void admin_includes_every_image_role_and_monitor() {
    AccessToken admin = token(Role.ADMIN, "*");
    for (Role role : Role.values()) {
      assertThat(AccessPolicy.decide(admin, role, "vm-1"))
          .as("%s", role)
          .isEqualTo(Decision.GRANTED);
    }
  }
}
