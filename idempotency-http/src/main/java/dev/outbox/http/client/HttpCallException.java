package dev.outbox.http.client;

import java.io.IOException;
import java.util.OptionalInt;

/**
 * An operation ended without a response for the caller: every attempt failed with an I/O error
 * (connection refused or reset, timeout), or the body handler failed on the last response (the
 * server answered, so the operation may have run), or the client refused to send. The cause is the
 * last attempt's failure: the I/O error, or the body handler's exception.
 */
public class HttpCallException extends IOException {
    private final int attempts;
    private final String idempotencyKey;
    private final transient Completion completion;
    private final int status;

    /**
     * @param message what happened and what to do
     * @param cause the last attempt's failure, or null
     * @param attempts requests sent
     * @param idempotencyKey the operation's key, or null
     * @param completion why the client stopped
     */
    public HttpCallException(
            String message, Throwable cause, int attempts, String idempotencyKey, Completion completion) {
        this(message, cause, attempts, idempotencyKey, completion, 0);
    }

    /**
     * @param message what happened and what to do
     * @param cause the last attempt's failure, or null
     * @param attempts requests sent
     * @param idempotencyKey the operation's key, or null
     * @param completion why the client stopped
     * @param status the status of the last response, when the body handler failed on it; else 0
     */
    public HttpCallException(
            String message, Throwable cause, int attempts, String idempotencyKey, Completion completion, int status) {
        super(message, cause);
        this.attempts = attempts;
        this.idempotencyKey = idempotencyKey;
        this.completion = completion;
        this.status = status;
    }

    /**
     * @return the status of the last response when the body handler failed on it (the server answered:
     *     a 2xx means the operation ran), else empty: no response came
     */
    public OptionalInt responseStatus() {
        return status == 0 ? OptionalInt.empty() : OptionalInt.of(status);
    }

    /** @return requests sent before giving up; 0 when none was sent */
    public int attempts() {
        return attempts;
    }

    /**
     * @return the operation's key, or null. A target that honours it (declared in {@code
     *     idempotentTargets}, or called with {@code sendKeyed}) answers a later retry with the same
     *     key with the first outcome; a target that does not may run the operation again.
     */
    public String idempotencyKey() {
        return idempotencyKey;
    }

    /**
     * @return why the client stopped, or null when the client refused to send: a circuit breaker
     *     refused the call, or the body of a call that may be retried could not be read before the
     *     first attempt ({@link #attempts()} 0)
     */
    public Completion completion() {
        return completion;
    }
}
