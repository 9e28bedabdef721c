package dev.outbox.relay.internal;

import java.time.OffsetDateTime;
import java.util.UUID;

/** One publishable row of {@code outbox_message}, as read by a shard loop. */
record OutboxRow(
    long id,
    UUID messageId,
    String topic,
    String key,
    String type,
    String contentType,
    String headersJson,
    byte[] payload,
    OffsetDateTime createdAt) {}
