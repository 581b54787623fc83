package dev.fvdisk.security;

/**
 * A configured token as the running service keeps it: its name, role, image patterns and the
 * SHA-256 of its secret, never the secret itself. Public so a front door outside this package can
 * hand an authenticated token to the {@link AccessPolicy}.
 */
public record AccessToken(String name, Role role, ImageGlob images, byte[] secretSha256) {

  boolean mayTouch(String imageName) {
    return images.matches(imageName);
  }

  @Override
  public String toString() {
    return "AccessToken[name=" + name + ", role=" + role + ", images=" + images + "]";
  }
}
