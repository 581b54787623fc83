package dev.fvdisk.nbd;

import dev.fvdisk.security.AccessPolicy;
import dev.fvdisk.security.AccessToken;
import dev.fvdisk.security.Role;
import dev.fvdisk.service.Access;
import dev.fvdisk.service.ImageDescriptor;
import dev.fvdisk.service.ImageNotFoundException;
import dev.fvdisk.service.ImageService;
import dev.fvdisk.service.VirtualDisk;
import java.util.List;
import org.jspecify.annotations.Nullable;

/**
 * The service's images as NBD exports for one client; the export name is the image name. A client
 * acting as an access token sees only the images the {@link AccessPolicy} grants it as a reader,
 * and writes only with a writer's role; a client without a token (no tokens are configured) sees
 * every image and writes every writable one.
 */
final class ImageExports implements Exports {

  private final ImageService images;
  private final @Nullable AccessToken token;

  /**
   * @param token the token the client acts as, or null when the service has no tokens
   */
  ImageExports(ImageService images, @Nullable AccessToken token) {
    this.images = images;
    this.token = token;
  }

  private boolean may(Role role, String name) {
    return token == null || AccessPolicy.decide(token, role, name) == AccessPolicy.Decision.GRANTED;
  }

  @Override
  public List<String> names() {
    return images.list().stream()
        .map(ImageDescriptor::name)
        .filter(n -> may(Role.READER, n))
        .toList();
  }

  @Override
  public @Nullable Export attach(String name, boolean forSession) {
    if (!may(Role.READER, name)) {
      return null; // hidden exactly like an image that does not exist
    }
    boolean writer = may(Role.WRITER, name);
    VirtualDisk disk;
    try {
      // A session attaches for writing even to a read-only image or for a reader: that pins the
      // image, so that it is not deleted under a VM that uses it. What the client may do is the
      // export's read-only flag, which the transmission enforces before any call.
      disk =
          forSession
              ? images.attachSession(name, Access.READ_WRITE)
              : images.attach(name, Access.READ_ONLY);
    } catch (ImageNotFoundException e) {
      return null;
    }
    try {
      boolean readOnly = disk.readOnly() || !writer;
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
