package dev.outbox.http.client;

import java.io.IOException;

/**
 * A 5xx response as the client records it on the host's circuit breaker: Resilience4j judges calls
 * by exception, so every 5xx that is not a replay (also one the body handler failed on) is recorded
 * with {@code onError} and this exception. It is an {@link IOException}, so a {@link
 * io.github.resilience4j.circuitbreaker.CircuitBreakerConfig} that records I/O errors ({@code
 * recordExceptions(IOException.class)}) counts 5xx responses as failures too; name this class in
 * {@code ignoreExceptions(...)} to count I/O errors only. It is never thrown to the caller, who gets
 * the response.
 */
public final class ServerErrorResponse extends IOException {
    private static final long serialVersionUID = 1L;

    private final int status;

    /**
     * @param status the response's status, 500 to 599
     */
    public ServerErrorResponse(int status) {
        super("HTTP " + status + " response");
        this.status = status;
    }

    /** @return the response's status */
    public int status() {
        return status;
    }

    /** @return this: recorded for every 5xx, where a stack trace would tell nothing */
    @Override
    public synchronized Throwable fillInStackTrace() {
        return this;
    }
}
