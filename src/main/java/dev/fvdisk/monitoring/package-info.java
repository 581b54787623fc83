/**
 * Monitoring through Spring Boot Actuator: the {@code storage} health indicator, the read-only
 * {@code storage} endpoint, the Micrometer meters and the info contributor.
 *
 * <p>Everything here only reads. Figures come from {@link
 * dev.fvdisk.service.ImageService#storageSnapshot()}, which reads counters the engine keeps
 * current; nothing here walks the data directory or opens an image file, so a probe or a scrape
 * costs the same however many images there are and however large they grow. Data-path timings
 * arrive through {@link dev.fvdisk.service.ImageServiceObserver}, so the service never sees
 * Micrometer. The names and shapes of what is served are the HTTP contract's (section Monitoring);
 * see {@code docs/monitoring.md}.
 */
@NullMarked
package dev.fvdisk.monitoring;

import org.jspecify.annotations.NullMarked;
