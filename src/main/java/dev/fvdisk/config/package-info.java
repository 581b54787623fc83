/**
 * Configuration: the validated {@code fvdisk.*} properties and the wiring that turns them into the
 * service and the engine objects it uses. The engine itself never sees Spring; everything it needs
 * is handed to it as plain values from here.
 */
@NullMarked
package dev.fvdisk.config;

import org.jspecify.annotations.NullMarked;
