package dev.fvdisk.security;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;

import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import org.junit.jupiter.api.Test;

/**
 * Security sits beside the web layer, not inside it: it knows the service's exceptions (to answer a
 * hidden image as not found) but neither the controllers nor the engine, and the web layer reaches
 * it only through {@link ImageScope}.
 */
class SecurityArchitectureTest {

  @Test
  void security_uses_neither_the_web_layer_nor_the_engine() {
    noClasses()
        .that()
        .resideInAPackage("dev.fvdisk.security..")
        .should()
        .dependOnClassesThat()
        .resideInAnyPackage("dev.fvdisk.web..", "dev.fvdisk.engine..")
        .check(
            new ClassFileImporter()
                .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
                .importPackages("dev.fvdisk"));
  }

  /** The access decision is plain Java, so a front door that is not Spring's can ask it too. */
  @Test
  void the_access_policy_uses_neither_spring_nor_servlets() {
    noClasses()
        .that()
        .belongToAnyOf(AccessPolicy.class)
        .should()
        .dependOnClassesThat()
        .resideInAnyPackage("org.springframework..", "jakarta..")
        .check(
            new ClassFileImporter()
                .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
                .importPackages("dev.fvdisk.security"));
  }
}
