package dev.fvdisk.web;

import java.util.List;

/** Body of {@code GET /api/v1/images}: every image, sorted by name. */
record ImageListResponse(List<ImageResponse> images) {}
