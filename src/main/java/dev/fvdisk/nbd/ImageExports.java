package dev.fvdisk.nbd;

import dev.fvdisk.service.Access;
import dev.fvdisk.service.ImageDescriptor;
import dev.fvdisk.service.ImageNotFoundException;
import dev.fvdisk.service.ImageService;
import dev.fvdisk.service.VirtualDisk;
import java.util.List;
import org.jspecify.annotations.Nullable;

/**
 * The service's images as NBD exports, for a client that may see every image and write every
 * writable one: the plaintext listener's clients, which only exist where the service has no access
 * tokens (see {@link NbdServer}). The export name is the image name.
 */
final class ImageExports implements Exports {

  private final ImageService images;

  ImageExports(ImageService images) {
    this.images = images;
  }

  @Override
  public List<String> names() {
    return images.list().stream().map(ImageDescriptor::name).toList();
  }

  @Override
  public @Nullable Export attach(String name, boolean forSession) {
    VirtualDisk disk;
    try {
      // A session attaches as a writer even to a read-only image: that pins the image, so that it
      // is not deleted under a VM that boots from it.
      disk =
          forSession
              ? images.attachSession(name, Access.READ_WRITE)
              : images.attach(name, Access.READ_ONLY);
    } catch (ImageNotFoundException e) {
      return null;
    }
    try {
      boolean readOnly = disk.readOnly();
      String description =
          (readOnly ? "read-only " : "") + "fvdisk image of " + disk.sizeBytes() + " bytes";
      return new Export(disk, readOnly, description);
    } catch (RuntimeException e) {
      disk.close();
      if (e instanceof ImageNotFoundException) {
        return null;
      }
      throw e;
    }
  }
}
