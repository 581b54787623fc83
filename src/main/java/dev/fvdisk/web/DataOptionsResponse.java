package dev.fvdisk.web;

import java.util.List;
import org.jspecify.annotations.Nullable;

/** Body of {@code OPTIONS .../data}; {@code maxWriteBytes} is null when unlimited. */
record DataOptionsResponse(List<String> features, @Nullable Long maxWriteBytes) {}
