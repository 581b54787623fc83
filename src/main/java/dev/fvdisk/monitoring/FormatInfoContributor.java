package dev.fvdisk.monitoring;

import dev.fvdisk.service.ImageService;
import java.util.Map;
import org.springframework.boot.actuate.info.Info;
import org.springframework.boot.actuate.info.InfoContributor;
import org.springframework.stereotype.Component;

/**
 * Adds {@code fvdisk.formatVersion} to {@code /actuator/info}, beside the build version that Boot
 * takes from the build-info file: an operator can tell which image files a running build reads.
 */
@Component
public class FormatInfoContributor implements InfoContributor {

  @Override
  public void contribute(Info.Builder builder) {
    builder.withDetail("fvdisk", Map.of("formatVersion", ImageService.formatVersion()));
  }
}
