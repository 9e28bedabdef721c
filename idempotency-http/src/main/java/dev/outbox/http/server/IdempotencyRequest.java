package dev.outbox.http.server;

import java.util.Objects;

/**
 * One request as the key store sees it.
 *
 * @param scope who and what the key belongs to: principal or tenant, method and route (see {@link
 *     ScopeResolver}); a key in one scope is invisible in every other. A store built with an {@link
 *     IdempotencyStore.Builder#application application} puts it before the scope
 * @param key the idempotency key, unquoted (see {@link IdempotencyKey#parse})
 * @param fingerprint identifies the request content (see {@link RequestFingerprint}); the same key
 *     with another fingerprint is refused with 422
 */
public record IdempotencyRequest(String scope, String key, String fingerprint) {
    /**
     * @throws NullPointerException when an argument is null
     * @throws IllegalArgumentException when the scope or fingerprint is empty or the key is empty or
     *     longer than {@value IdempotencyKey#MAX_LENGTH} characters
     */
    public IdempotencyRequest {
        Objects.requireNonNull(scope, "scope may not be null");
        Objects.requireNonNull(key, "key may not be null");
        Objects.requireNonNull(fingerprint, "fingerprint may not be null");
        if (scope.isEmpty()) {
            throw new IllegalArgumentException("scope may not be empty; name at least the method and route");
        }
        if (key.isEmpty() || key.length() > IdempotencyKey.MAX_LENGTH) {
            throw new IllegalArgumentException(
                    "key must be 1 to " + IdempotencyKey.MAX_LENGTH + " characters long, got " + key.length());
        }
        if (fingerprint.isEmpty()) {
            throw new IllegalArgumentException("fingerprint may not be empty");
        }
    }
}
