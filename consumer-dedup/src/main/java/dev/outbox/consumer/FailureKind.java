package dev.outbox.consumer;

/**
 * What the consumer does after a handler failure; see {@link
 * IdempotentConsumer.Builder#failureClassifier(java.util.function.Function)}.
 */
public enum FailureKind {
    /**
     * Retried with {@link IdempotentConsumer.Builder#backoff backoff} delays, each call counting
     * towards {@link IdempotentConsumer.Builder#maxAttempts(int) maxAttempts}; after the last one the
     * record is dead-lettered. The default for exceptions the classifier does not know.
     */
    RETRY,

    /**
     * Passes by itself (a downstream service restarting, a rate limit): retried with backoff delays
     * without counting towards {@code maxAttempts}, until it succeeds or fails otherwise. Its partition
     * waits meanwhile; {@code outbox.consumer.retries{cause="transient"}} counts the retries.
     */
    TRANSIENT,

    /** Can never succeed (a payload that cannot be decoded, a rejected business rule): dead-lettered at once. */
    PERMANENT
}
