package dev.fvdisk.engine;

/**
 * What one step of {@link Image#compact} did.
 *
 * @param movedChunks chunks moved from the end of the file into free slots nearer its start
 * @param releasedBytes bytes the file shrank by
 */
public record CompactionStep(int movedChunks, long releasedBytes) {

  /** Whether the step changed anything; a step that did not has nothing left to do for now. */
  public boolean didWork() {
    return movedChunks > 0 || releasedBytes > 0;
  }
}
