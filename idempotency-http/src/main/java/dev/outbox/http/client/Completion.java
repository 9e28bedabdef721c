package dev.outbox.http.client;

/** Why {@link IdempotentHttpClient} stopped sending attempts of one operation. */
public enum Completion {
    /**
     * The last response is final (2xx, 3xx, most 4xx, or a replayed response): no retry was due. In
     * an {@link HttpCallException}: the body handler failed on that response.
     */
    RESPONSE,
    /** The attempt was retryable, but the operation had used {@link IdempotentHttpClient.Builder#maxAttempts}. */
    ATTEMPTS_EXHAUSTED,
    /** The attempt was retryable, but the retry budget had no retry left: the dependency is failing for many callers. */
    BUDGET_EXHAUSTED,
    /**
     * The attempt failed, but the request may not be retried: a POST or PATCH without an
     * Idempotency-Key, or to a target not declared as honouring it, that may have reached the server.
     */
    NOT_RETRIED,
    /** The server asked for a {@code Retry-After} longer than {@link IdempotentHttpClient.Builder#maxRetryAfter}. */
    RETRY_AFTER_TOO_LONG
}
