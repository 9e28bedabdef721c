package dev.outbox.consumer.internal;

/**
 * The database or the dead-letter producer failed (not the handler): the work is retried with
 * backoff under a circuit breaker, without consuming the record's attempts.
 */
final class InfrastructureException extends Exception {
    InfrastructureException(String message, Throwable cause) {
        super(message, cause);
    }
}
