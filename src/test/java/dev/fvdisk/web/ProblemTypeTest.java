package dev.fvdisk.web;

import static org.assertj.core.api.Assertions.assertThat;

import com.tngtech.archunit.core.domain.JavaClass;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import dev.fvdisk.service.ServiceException;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/** Every concrete service exception has exactly one problem type in the mapper's table. */
class ProblemTypeTest {

  @Test
  void every_service_exception_is_mapped() {
    Set<String> concrete =
        new ClassFileImporter()
            .importPackages("dev.fvdisk.service").stream()
                .filter(c -> c.isAssignableTo(ServiceException.class))
                .filter(
                    c ->
                        !c.getModifiers()
                            .contains(com.tngtech.archunit.core.domain.JavaModifier.ABSTRACT))
                .map(JavaClass::getName)
                .collect(Collectors.toSet());
    Set<String> mapped =
        ProblemType.mappedExceptions().stream().map(Class::getName).collect(Collectors.toSet());
    assertThat(mapped).isEqualTo(concrete);
  }

  @Test
  void slugs_are_unique_and_titles_fixed() {
    assertThat(
            java.util.Arrays.stream(ProblemType.values())
                .map(t -> t.type().toString())
                .distinct()
                .count())
        .isEqualTo(ProblemType.values().length);
    for (ProblemType t : ProblemType.values()) {
      assertThat(t.type().toString()).startsWith("https://fvdisk.dev/problems/");
      assertThat(t.title()).isNotBlank();
    }
  }
}
