package dev.outbox.relay.admin;

import java.time.Instant;
import java.util.UUID;

/**
 * A parked row, as {@link RelayAdmin#parked(int)} lists it.
 *
 * @param id the outbox id (commit order)
 * @param messageId the message id
 * @param shard its shard
 * @param topic the Kafka topic
 * @param key the message key, or {@code null}
 * @param payloadBytes the payload's size in bytes (0 for a tombstone)
 * @param attempts how often publishing was tried
 * @param createdAt when it was appended
 * @param parkedAt when it was parked
 * @param lastError the error that parked it
 */
public record ParkedMessage(
        long id,
        UUID messageId,
        int shard,
        String topic,
        String key,
        int payloadBytes,
        int attempts,
        Instant createdAt,
        Instant parkedAt,
        String lastError) {}
