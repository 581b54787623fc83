package dev.fvdisk.security;

import org.springframework.boot.diagnostics.AbstractFailureAnalyzer;
import org.springframework.boot.diagnostics.FailureAnalysis;

/**
 * Turns the refusal into Boot's "APPLICATION FAILED TO START" report with a plain description and
 * the actions, instead of a stack trace. Registered in {@code META-INF/spring.factories}.
 */
public final class UnprotectedListenAddressFailureAnalyzer
    extends AbstractFailureAnalyzer<UnprotectedListenAddressException> {

  @Override
  protected FailureAnalysis analyze(
      Throwable rootFailure, UnprotectedListenAddressException cause) {
    return new FailureAnalysis(
        cause.getMessage(),
        """
        Do one of these:
        \tConfigure at least one access token, for example
        \t  fvdisk.security.tokens[0].secret=<long random string>  (or secret-sha256=<hex digest>)
        \t  fvdisk.security.tokens[0].role=admin
        \t  (environment: FVDISK_SECURITY_TOKENS_0_SECRET, FVDISK_SECURITY_TOKENS_0_ROLE)
        \tListen on loopback only: leave server.address unset, or set it to 127.0.0.1.
        \tOn a network you trust completely: fvdisk.security.allow-unauthenticated=true.\
        """,
        cause);
  }
}
