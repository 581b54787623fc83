/**
 * Objects in a bucket, for images kept in an S3-compatible store (issue 20): the {@link
 * dev.fvdisk.objectstore.ObjectStore} port, an in-memory implementation for tests, and one over the
 * AWS SDK for S3. Knows nothing of images; every object carries a CRC-32C that is checked on read.
 */
@NullMarked
package dev.fvdisk.objectstore;

import org.jspecify.annotations.NullMarked;
