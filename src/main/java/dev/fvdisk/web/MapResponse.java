package dev.fvdisk.web;

import dev.fvdisk.service.ExtentPage;
import java.util.List;
import org.jspecify.annotations.Nullable;

/** One page of the extent map; {@code nextOffsetBytes} is null on the last page. */
record MapResponse(List<ExtentPage.MappedExtent> extents, @Nullable Long nextOffsetBytes) {

  static MapResponse of(ExtentPage page) {
    return new MapResponse(page.extents(), page.nextOffsetBytes());
  }
}
