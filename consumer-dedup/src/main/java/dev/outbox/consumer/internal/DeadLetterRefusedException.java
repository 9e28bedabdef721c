package dev.outbox.consumer.internal;

/**
 * The dead-letter topic refused this record for good (too large, or refused by the topic's
 * settings): retrying cannot help. Failures of the deployment (authorization, an invalid topic name)
 * are not this: they are retried ({@code DeadLetters.refusesTheRecordForGood}).
 */
final class DeadLetterRefusedException extends Exception {
    DeadLetterRefusedException(String message, Throwable cause) {
        super(message, cause);
    }
}
