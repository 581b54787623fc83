package dev.fvdisk.monitoring;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;

import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import org.junit.jupiter.api.Test;

/**
 * Monitoring only reads the service's snapshot (style guide §2, §10): it never reaches into the
 * engine, and the service never sees Micrometer or Actuator.
 */
class MonitoringArchitectureTest {

  @Test
  void monitoring_reads_the_service_and_the_service_knows_no_metrics_library() {
    var classes =
        new ClassFileImporter()
            .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
            .importPackages("dev.fvdisk");
    noClasses()
        .that()
        .resideInAPackage("dev.fvdisk.monitoring..")
        .should()
        .dependOnClassesThat()
        .resideInAnyPackage("dev.fvdisk.engine..", "dev.fvdisk.web..")
        .check(classes);
    noClasses()
        .that()
        .resideInAnyPackage("dev.fvdisk.service..", "dev.fvdisk.engine..")
        .should()
        .dependOnClassesThat()
        .resideInAnyPackage("io.micrometer..", "org.springframework.boot.actuate..")
        .check(classes);
  }
}
