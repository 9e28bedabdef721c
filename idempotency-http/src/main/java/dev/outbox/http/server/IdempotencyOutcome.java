package dev.outbox.http.server;

import java.time.Duration;
import java.util.Objects;

/**
 * What {@link IdempotencyStore#execute} did with one request. A sealed family, so a {@code switch}
 * over it is checked for completeness:
 *
 * <pre>{@code
 * switch (store.execute(request, call)) {
 *   case IdempotencyOutcome.Executed e -> send(e.response());
 *   case IdempotencyOutcome.Replayed r -> send(r.response(), "Idempotent-Replayed: true");
 *   case IdempotencyOutcome.Mismatch m -> send(422);
 *   case IdempotencyOutcome.InFlight f -> send(409, "Retry-After: " + f.retryAfter().toSeconds());
 *   case IdempotencyOutcome.NotStored n -> send(n.response());
 * }
 * }</pre>
 */
public sealed interface IdempotencyOutcome {

    /**
     * The key was new (or had expired): the business call ran, and its response was stored with the
     * key. Whether the call's own writes were committed with them or rolled back is decided by the
     * {@link ResponsePolicy} ({@link ResponsePolicy.Action#COMMIT} or {@link
     * ResponsePolicy.Action#ROLL_BACK_AND_STORE}).
     *
     * @param response the response the call produced
     * @param writesCommitted whether the call's writes were committed (false: rolled back, only the
     *     key and the response remain)
     */
    record Executed(StoredResponse response, boolean writesCommitted) implements IdempotencyOutcome {
        /** @throws NullPointerException when {@code response} is null */
        public Executed {
            Objects.requireNonNull(response, "response may not be null");
        }

        /**
         * An execution whose writes were committed.
         *
         * @param response the response the call produced
         */
        public Executed(StoredResponse response) {
            this(response, true);
        }
    }

    /**
     * The key was already used by a committed request with the same fingerprint: nothing ran; send
     * the stored response again, marked {@code Idempotent-Replayed: true}.
     *
     * @param response the response stored by the first request
     */
    record Replayed(StoredResponse response) implements IdempotencyOutcome {
        /** @throws NullPointerException when {@code response} is null */
        public Replayed {
            Objects.requireNonNull(response, "response may not be null");
        }
    }

    /**
     * The key was already used with another request (another fingerprint): nothing ran; answer 422.
     */
    record Mismatch() implements IdempotencyOutcome {}

    /**
     * Another transaction holds the key and did not finish within the lock timeout: nothing ran;
     * answer 409 with {@code Retry-After}.
     *
     * @param retryAfter when the client should try again
     */
    record InFlight(Duration retryAfter) implements IdempotencyOutcome {
        /** @throws NullPointerException when {@code retryAfter} is null */
        public InFlight {
            Objects.requireNonNull(retryAfter, "retryAfter may not be null");
        }
    }

    /**
     * The business call answered a status that the {@link ResponsePolicy} does not store ({@link
     * ResponsePolicy.Action#RELEASE}: by default 5xx, 401, 403, 408, 409, 423, 425 and 429): its
     * transaction was rolled back, so neither the key nor any write of the call remains, and a retry
     * with the same key runs anew. Send the response as it is.
     *
     * @param response the response the call produced
     */
    record NotStored(StoredResponse response) implements IdempotencyOutcome {
        /** @throws NullPointerException when {@code response} is null */
        public NotStored {
            Objects.requireNonNull(response, "response may not be null");
        }
    }
}
