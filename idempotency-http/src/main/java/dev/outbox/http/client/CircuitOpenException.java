package dev.outbox.http.client;

/**
 * The circuit breaker of the target host is open: after too many failures the client fails fast
 * instead of adding load, until the breaker's wait has passed and a few trial calls succeed.
 */
public final class CircuitOpenException extends HttpCallException {
    private final String host;

    /**
     * @param message what happened
     * @param cause the last attempt's failure in this operation, or null
     * @param host the host and port whose breaker is open
     * @param attempts requests of this operation sent before the breaker refused
     * @param idempotencyKey the operation's key, or null
     */
    public CircuitOpenException(String message, Throwable cause, String host, int attempts, String idempotencyKey) {
        super(message, cause, attempts, idempotencyKey, null);
        this.host = host;
    }

    /** @return the host and port whose breaker is open, e.g. {@code orders.internal:8080} */
    public String host() {
        return host;
    }
}
