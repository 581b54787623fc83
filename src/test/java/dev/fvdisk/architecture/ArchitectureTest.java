package dev.fvdisk.architecture;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.classes;
import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;

import com.tngtech.archunit.core.domain.JavaClass;
import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import dev.fvdisk.engine.io.Storage;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Package boundaries from the style guide: a Spring-free engine, a service that speaks no wire
 * protocol, and a web layer above it that reaches disks only through the service's port.
 */
class ArchitectureTest {

  private static JavaClasses imported;

  @BeforeAll
  static void importClasses() {
    imported =
        new ClassFileImporter()
            .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
            .importPackages("dev.fvdisk");
  }

  @Test
  void engine_uses_no_spring_no_object_store_sdk_and_nothing_of_the_service() {
    noClasses()
        .that()
        .resideInAPackage("dev.fvdisk.engine..")
        .should()
        .dependOnClassesThat()
        .resideInAnyPackage(
            "org.springframework..",
            "jakarta..",
            "software.amazon..",
            "dev.fvdisk.service..",
            "dev.fvdisk.web..",
            "dev.fvdisk.nbd..",
            "dev.fvdisk.config..")
        .check(imported);
  }

  @Test
  void adapters_never_touch_engine_types() {
    noClasses()
        .that()
        .resideInAnyPackage("dev.fvdisk.web..", "dev.fvdisk.nbd..")
        .should()
        .dependOnClassesThat()
        .resideInAPackage("dev.fvdisk.engine..")
        .check(imported);
  }

  @Test
  void nbd_is_plain_java_over_the_service_port() {
    noClasses()
        .that()
        .resideInAPackage("dev.fvdisk.nbd..")
        .should()
        .dependOnClassesThat()
        .resideInAnyPackage(
            "org.springframework..", "jakarta.servlet..", "io.micrometer..", "dev.fvdisk.web..")
        .check(imported);
  }

  @Test
  void service_does_not_know_the_web() {
    noClasses()
        .that()
        .resideInAPackage("dev.fvdisk.service..")
        .should()
        .dependOnClassesThat()
        .resideInAnyPackage(
            "dev.fvdisk.web..",
            "org.springframework.web..",
            "org.springframework.http..",
            "jakarta.servlet..")
        .check(imported);
  }

  /**
   * HTTP's vocabulary stays in the web layer, so another front door (NBD) inherits none of it:
   * checked on every class name, nested ones included, in any letter case.
   */
  @Test
  void service_declares_no_http_named_types() {
    noClasses()
        .that()
        .resideInAPackage("dev.fvdisk.service..")
        .should()
        .haveNameMatching(
            ".*\\.[^.]*(?i:Http|IfMatch|ETag|EntityTag|LengthRequired|PayloadTooLarge"
                + "|RangeNotSatisfiable|PreconditionFailed)[^.]*")
        .check(imported);
  }

  @Test
  void persistence_ports_are_plain_java() {
    classes()
        .that()
        .resideInAPackage("dev.fvdisk.engine.spi..")
        .should()
        .onlyDependOnClassesThat()
        .resideInAnyPackage("java..", "org.jspecify..", "dev.fvdisk.engine.spi..")
        .check(imported);
  }

  /**
   * The data path (range walking, the clone layer, the chunk store, the committer, the checker)
   * reaches bytes only through the persistence ports; offsets in a file belong to the local
   * implementation of those ports.
   */
  @Test
  void the_data_path_reaches_storage_only_through_the_ports() {
    noClasses()
        .that()
        .haveNameMatching(
            "dev\\.fvdisk\\.engine\\.(ChunkStore|CloneLayer|Committer|RangeWalk|ExtentList|Checker)(\\$.*)?")
        .should()
        .dependOnClassesThat()
        .areAssignableTo(Storage.class)
        .check(imported);
  }

  /**
   * Only the object-store package talks to the AWS SDK. It knows of the engine only the storage
   * seam it implements ({@code engine.io}, {@code engine.spi}), and nothing of the service, the
   * adapters or Spring: the service wires a bucket in through {@link
   * dev.fvdisk.objectstore.ObjectStore} and {@link dev.fvdisk.objectstore.BucketStorage}.
   */
  @Test
  void only_the_object_store_package_uses_the_aws_sdk() {
    noClasses()
        .that()
        .resideOutsideOfPackage("dev.fvdisk.objectstore..")
        .should()
        .dependOnClassesThat()
        .resideInAPackage("software.amazon..")
        .check(imported);
    noClasses()
        .that()
        .resideInAPackage("dev.fvdisk.objectstore..")
        .should()
        .dependOnClassesThat()
        .resideInAnyPackage(
            "org.springframework..",
            "dev.fvdisk.service..",
            "dev.fvdisk.web..",
            "dev.fvdisk.nbd..",
            "dev.fvdisk.config..")
        .check(imported);
    noClasses()
        .that()
        .resideInAPackage("dev.fvdisk.objectstore..")
        .should()
        .dependOnClassesThat(
            JavaClass.Predicates.resideInAPackage("dev.fvdisk.engine..")
                .and(
                    JavaClass.Predicates.resideOutsideOfPackages(
                        "dev.fvdisk.engine.io..", "dev.fvdisk.engine.spi..")))
        .check(imported);
  }
}
