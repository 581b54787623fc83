/**
 * Who may do what: access tokens from configuration, the roles they carry, the image names they may
 * touch, and the safe default that keeps an unprotected service on loopback.
 *
 * <p>Tokens are configured under {@code fvdisk.security.tokens[i]} and checked by their SHA-256
 * digest only, in constant time; the plain secret is never kept by the running service. A client
 * presents a token as {@code Authorization: Bearer <secret>} or as the password of HTTP Basic
 * (QEMU's HTTP driver can send only Basic). Authorization is by request matchers in {@link
 * SecurityConfiguration}: the role decides the method and path, the token's image pattern decides
 * the image. The decision itself is {@link AccessPolicy}, plain Java that any front door can ask;
 * {@link ImageAuthorization} adapts it to Spring Security. Every refusal is an RFC 9457 problem
 * produced by the web layer's one mapper, so authentication errors look like every other error.
 *
 * <p>An image outside a token's pattern is answered exactly as an image that does not exist (404
 * {@code image-not-found}), so a token cannot learn which other images a host serves. A missing
 * role is 403 {@code forbidden}: that answer does not depend on whether the image exists.
 */
@NullMarked
package dev.fvdisk.security;

import org.jspecify.annotations.NullMarked;
