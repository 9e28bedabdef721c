package dev.outbox.consumer.internal;

/**
 * The database or the dead-letter producer failed (not the handler): the work is retried with
 * backoff under a circuit breaker, without consuming the record's attempts.
 */
final class InfrastructureException extends Exception {
    private final boolean contention;

    InfrastructureException(String message, Throwable cause) {
        this(message, cause, false);
    }

    private InfrastructureException(String message, Throwable cause, boolean contention) {
        super(message, cause);
        this.contention = contention;
    }

    /**
     * A statement of the consumer's own waited past its bound for a row another transaction holds:
     * the database answers, so it is retried without feeding the database breaker ({@link Breaker}
     * counts it as an answer).
     */
    static InfrastructureException contention(String message, Throwable cause) {
        return new InfrastructureException(message, cause, true);
    }

    boolean contention() {
        return contention;
    }
}
