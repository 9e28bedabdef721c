package dev.outbox.core;

/** A failure that may pass: retry with backoff (for example a broker or database not answering). */
public class RetriableOutboxException extends OutboxException {
    /**
     * @param message what went wrong
     * @param cause the underlying failure
     */
    public RetriableOutboxException(String message, Throwable cause) {
        super(message, cause);
    }
}
