package dev.fvdisk.nbd;

import dev.fvdisk.security.AccessToken;
import java.util.Optional;
import java.util.function.Function;
import javax.net.ssl.SSLContext;
import javax.security.auth.x500.X500Principal;
import org.jspecify.annotations.Nullable;

/**
 * TLS for the NBD listener: once configured, every client must upgrade with {@code
 * NBD_OPT_STARTTLS} and present a certificate the context trusts before it may do anything else.
 *
 * @param context the server's certificate and the authorities client certificates must chain to
 * @param tokens the access token a client certificate's subject acts as, which decides the images
 *     the client sees and whether it may write; null when the service has no tokens, and then every
 *     trusted client may use every image
 */
public record NbdTls(
    SSLContext context, @Nullable Function<X500Principal, Optional<AccessToken>> tokens) {}
