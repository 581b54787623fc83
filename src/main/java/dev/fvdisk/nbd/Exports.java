package dev.fvdisk.nbd;

import dev.fvdisk.service.VirtualDisk;
import java.util.List;
import org.jspecify.annotations.Nullable;

/**
 * The images one NBD client may see and attach, as the connection asks for them. An implementation
 * applies the client's access: images it may not touch are absent, exactly like images that do not
 * exist, so their names never leak.
 */
interface Exports {

  /** The names of the exports this client may see, for {@code NBD_OPT_LIST}. */
  List<String> names();

  /**
   * Attaches to an export for a session ({@code forSession}: writable when the image and the client
   * allow it, pinning the image) or only to describe it ({@code NBD_OPT_INFO}: never pins).
   *
   * @return the attachment, or null when this client knows no export of that name
   */
  @Nullable Export attach(String name, boolean forSession);

  /**
   * An attached export.
   *
   * @param disk the attachment; the caller closes it
   * @param readOnly whether the client may only read: the image is marked read-only, or the
   *     client's access is a reader's
   * @param description a line for {@code NBD_INFO_DESCRIPTION}
   */
  record Export(VirtualDisk disk, boolean readOnly, String description) {}
}
