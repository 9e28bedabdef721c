package dev.outbox.http.client;

import java.net.http.HttpResponse;
import java.util.Objects;

/**
 * The outcome of one logical operation sent through {@link IdempotentHttpClient}.
 *
 * @param response the last response received
 * @param attempts how many requests were sent, at least 1
 * @param idempotencyKey the key every attempt carried, or null when the request had none
 * @param completion why the client stopped; {@link Completion#RESPONSE} unless retries ran out
 * @param <T> the body type
 */
public record CallResult<T>(HttpResponse<T> response, int attempts, String idempotencyKey, Completion completion) {
    /**
     * @throws NullPointerException when {@code response} or {@code completion} is null
     * @throws IllegalArgumentException when {@code attempts} is below 1
     */
    public CallResult {
        Objects.requireNonNull(response, "response may not be null");
        Objects.requireNonNull(completion, "completion may not be null");
        if (attempts < 1) {
            throw new IllegalArgumentException("attempts must be at least 1, got " + attempts);
        }
    }

    /** @return the status of the last response */
    public int status() {
        return response.statusCode();
    }

    /** @return the body of the last response */
    public T body() {
        return response.body();
    }

    /** @return attempts after the first */
    public int retries() {
        return attempts - 1;
    }

    /** @return whether the last response says the server replayed a stored response */
    public boolean replayed() {
        return response.headers()
                .firstValue("Idempotent-Replayed")
                .map("true"::equalsIgnoreCase)
                .orElse(false);
    }
}
