# fvdisk container image.
#   docker build -t fvdisk .
#   docker run -p 8080:8080 -v fvdisk-data:/data \
#     -e FVDISK_SECURITY_TOKENS_0_SECRETSHA256=<sha256 of the token> \
#     -e FVDISK_SECURITY_TOKENS_0_ROLE=admin fvdisk
# Without a token it refuses to start (see docs/security.md).
# Tests are not run here; `./mvnw verify` (and CI) runs them.

# ---- build: compile with the Maven wrapper on a JDK, then split Boot's layered jar ----
FROM eclipse-temurin:17-jdk AS build
WORKDIR /src
COPY mvnw pom.xml ./
COPY .mvn .mvn
# Dependencies first, in their own layer, so a source change does not download them again.
RUN ./mvnw -B -q dependency:go-offline
COPY openapi openapi
COPY src src
RUN ./mvnw -B -q package -DskipTests \
 && cp target/fvdisk-*.jar application.jar \
 && java -Djarmode=tools -jar application.jar extract --layers --launcher --destination extracted

# ---- runtime: a JRE, the extracted layers, a non-root user ----
# The build targets Java 17; the runtime is Java 25 so that requests can run on virtual threads
# (-e SPRING_THREADS_VIRTUAL_ENABLED=true; off by default, see docs/performance.md, "Request
# threads"), and because from Java 24 on a virtual thread blocked inside a monitor no longer holds
# its carrier thread. CI runs the test suite with virtual threads on a JDK 21+ where it has one.
FROM eclipse-temurin:25-jre
# wget only for the health check; the base image does not promise curl or wget.
RUN apt-get update \
 && apt-get install -y --no-install-recommends wget \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system fvdisk \
 && useradd --system --gid fvdisk --home-dir /app --no-create-home fvdisk \
 && mkdir -p /data \
 && chown fvdisk:fvdisk /data
WORKDIR /app
# Least to most often changed, so rebuilds reuse the lower layers.
COPY --from=build /src/extracted/dependencies/ ./
COPY --from=build /src/extracted/spring-boot-loader/ ./
COPY --from=build /src/extracted/snapshot-dependencies/ ./
COPY --from=build /src/extracted/application/ ./
# Listening on every interface is what makes a published port work; with it, the service
# refuses to start unless tokens are passed (FVDISK_SECURITY_TOKENS_0_...). The safe default is
# never switched off here: FVDISK_SECURITY_ALLOWUNAUTHENTICATED stays the operator's choice.
ENV FVDISK_DATA_DIR=/data \
    SERVER_PORT=8080 \
    SERVER_ADDRESS=0.0.0.0
VOLUME /data
EXPOSE 8080
USER fvdisk
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD wget -q -O /dev/null "http://localhost:${SERVER_PORT}/actuator/health" || exit 1
# Images are closed cleanly on SIGTERM (docker stop), which sets their clean-shutdown flag;
# give the container time for that with `docker stop -t 60` when images are large.
ENTRYPOINT ["java", "org.springframework.boot.loader.launch.JarLauncher"]
