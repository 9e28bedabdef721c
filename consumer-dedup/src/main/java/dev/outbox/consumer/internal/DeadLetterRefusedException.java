package dev.outbox.consumer.internal;

/**
 * The dead-letter topic refused a record for good (not authorized, invalid topic, too large even
 * without its value): retrying cannot help.
 */
final class DeadLetterRefusedException extends Exception {
    DeadLetterRefusedException(String message, Throwable cause) {
        super(message, cause);
    }
}
