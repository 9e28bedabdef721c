package dev.outbox.consumer.internal;

import java.time.Duration;
import java.util.Map;
import java.util.UUID;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;

/**
 * Observation points inside the consumer, for tests that must stop it at an exact step (a crash
 * between the database commit and the offset commit) or record what it decided (retry delays).
 * Not part of the public API; every method defaults to doing nothing.
 */
public interface Hooks {

    /** Hooks that do nothing. */
    Hooks NONE = new Hooks() {};

    /**
     * Called on the poll thread just before offsets are committed to Kafka, after the database
     * transactions of those records committed. An exception thrown here stops the consumer at once
     * without committing any offset, as a crash at that point would.
     *
     * @param offsets the offsets about to be committed
     */
    default void beforeOffsetCommit(Map<TopicPartition, OffsetAndMetadata> offsets) {}

    /**
     * Called on a worker thread when a failed record's retry is scheduled.
     *
     * @param messageId the record's message id
     * @param failedAttempts how many handler calls failed so far
     * @param delay the backoff delay before the next call
     */
    default void retryScheduled(UUID messageId, int failedAttempts, Duration delay) {}
}
