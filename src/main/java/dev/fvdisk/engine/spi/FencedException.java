package dev.fvdisk.engine.spi;

import java.io.IOException;

/**
 * A persistence back end refused a write because another writer now owns the image (its epoch is
 * newer than this writer's). Nothing of the refused write took effect; the engine latches the image
 * and refuses every later write and flush, exactly as after a failed force.
 */
public class FencedException extends IOException {

  public FencedException(String message) {
    super(message);
  }
}
