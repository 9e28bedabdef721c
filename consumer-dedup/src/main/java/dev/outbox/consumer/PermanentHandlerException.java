package dev.outbox.consumer;

/**
 * Thrown by a {@link MessageHandler} (or found in the cause chain of what it throws) to say that
 * the message can never be applied, for example a payload that fails validation: the record is
 * dead-lettered at once as {@link FailureKind#PERMANENT}, without retries.
 */
public class PermanentHandlerException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /**
     * @param message why the message is rejected
     * @param cause the underlying failure, or null
     */
    public PermanentHandlerException(String message, Throwable cause) {
        super(message, cause);
    }

    /** @param message why the message is rejected */
    public PermanentHandlerException(String message) {
        super(message);
    }
}
