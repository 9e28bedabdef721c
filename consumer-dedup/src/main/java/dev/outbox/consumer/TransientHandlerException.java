package dev.outbox.consumer;

/**
 * Thrown by a {@link MessageHandler} (or found in the cause chain of what it throws) to say that
 * the failure passes by itself, for example a downstream service answering 503: the record is
 * retried as {@link FailureKind#TRANSIENT}, without using up its attempts.
 */
public class TransientHandlerException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /**
     * @param message what failed
     * @param cause the underlying failure, or null
     */
    public TransientHandlerException(String message, Throwable cause) {
        super(message, cause);
    }

    /** @param message what failed */
    public TransientHandlerException(String message) {
        super(message);
    }
}
