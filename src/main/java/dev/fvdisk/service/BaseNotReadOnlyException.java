package dev.fvdisk.service;

/**
 * A clone was asked for on a base that is not marked read-only: its content could still change
 * under the clone.
 */
public class BaseNotReadOnlyException extends ServiceException {

  private static final long serialVersionUID = 1L;

  public BaseNotReadOnlyException(String base) {
    super(
        "image \""
            + base
            + "\" is not read-only and cannot be a base; mark it read-only first"
            + " (PATCH {\"readOnly\": true})");
    with("image", base);
  }
}
