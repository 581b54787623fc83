package dev.fvdisk.config;

import dev.fvdisk.service.DataDirectoryInUseException;
import org.springframework.boot.diagnostics.AbstractFailureAnalyzer;
import org.springframework.boot.diagnostics.FailureAnalysis;

/**
 * Turns the refusal of a data directory in use into Boot's "APPLICATION FAILED TO START" report
 * with the actions, instead of a stack trace. Registered in {@code META-INF/spring.factories}.
 */
public final class DataDirectoryInUseFailureAnalyzer
    extends AbstractFailureAnalyzer<DataDirectoryInUseException> {

  @Override
  protected FailureAnalysis analyze(Throwable rootFailure, DataDirectoryInUseException cause) {
    return new FailureAnalysis(
        cause.getMessage(),
        """
        Do one of these:
        \tStop the other service first (one service per data directory).
        \tGive this one a data directory of its own: fvdisk.data-dir=<path> (environment:\
         FVDISK_DATA_DIR).\
        """,
        cause);
  }
}
