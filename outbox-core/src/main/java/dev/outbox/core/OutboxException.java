package dev.outbox.core;

/**
 * Base of the project's unchecked exceptions. {@link RetriableOutboxException} marks the branch a
 * caller may retry with backoff; everything else is a mistake to fix or a message to park.
 */
public class OutboxException extends RuntimeException {
    /**
     * @param message what went wrong and how to fix it
     */
    public OutboxException(String message) {
        super(message);
    }

    /**
     * @param message what went wrong and how to fix it
     * @param cause the underlying failure, kept with its SQLState or Kafka error
     */
    public OutboxException(String message, Throwable cause) {
        super(message, cause);
    }
}
