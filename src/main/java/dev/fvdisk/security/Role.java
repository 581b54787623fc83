package dev.fvdisk.security;

import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.springframework.security.core.GrantedAuthority;
import org.springframework.security.core.authority.SimpleGrantedAuthority;

/**
 * What a token may do. Each role grants the authorities of the roles it includes, spelled out here
 * rather than through a role hierarchy, because Boot's "show health details when authorized" asks
 * the request for a role directly and would not see a hierarchy.
 */
public enum Role {
  /** HEAD, GET and OPTIONS on images, their data, sectors and map. */
  READER,
  /** Reader, plus data writes: PUT data and sectors, PATCH data (zero, flush). */
  WRITER,
  /** Writer and monitor, plus the lifecycle: create, patch, delete and check images. */
  ADMIN,
  /** Actuator endpoints beyond the bare health status; no image access. */
  MONITOR;

  /** The Spring Security role name, as {@code hasRole} and {@code isUserInRole} expect it. */
  String authority() {
    return "ROLE_" + name();
  }

  /** Whether this role may do what {@code other} allows. */
  boolean includes(Role other) {
    return switch (this) {
      case READER -> other == READER;
      case WRITER -> other == READER || other == WRITER;
      case ADMIN -> true;
      case MONITOR -> other == MONITOR;
    };
  }

  /** The authorities of every role this one includes; built once, since each request asks. */
  List<GrantedAuthority> grantedAuthorities() {
    return GRANTED.get(this);
  }

  private static final Map<Role, List<GrantedAuthority>> GRANTED = new EnumMap<>(Role.class);

  static {
    for (Role role : values()) {
      GRANTED.put(
          role,
          Stream.of(values())
              .filter(role::includes)
              .map(r -> (GrantedAuthority) new SimpleGrantedAuthority(r.authority()))
              .toList());
    }
  }
}
