package dev.fvdisk.service;

/**
 * What a data request needs to know about an image, without the cost of a full {@link
 * ImageDescriptor}: the size to check its range against and the entity tag to answer with.
 */
public record DataState(long sizeBytes, String etag) {}
