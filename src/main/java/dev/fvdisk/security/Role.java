package dev.fvdisk.security;

import java.util.List;
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

  List<GrantedAuthority> grantedAuthorities() {
    Stream<Role> included =
        switch (this) {
          case READER -> Stream.of(READER);
          case WRITER -> Stream.of(READER, WRITER);
          case ADMIN -> Stream.of(READER, WRITER, ADMIN, MONITOR);
          case MONITOR -> Stream.of(MONITOR);
        };
    return included.map(r -> (GrantedAuthority) new SimpleGrantedAuthority(r.authority())).toList();
  }
}
