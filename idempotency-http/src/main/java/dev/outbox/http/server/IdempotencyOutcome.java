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
   * The key was new (or had expired): the business call ran, and its response was stored and
   * committed together with the key and the call's own writes.
   *
   * @param response the response the call produced
   */
  record Executed(StoredResponse response) implements IdempotencyOutcome {
    /** @throws NullPointerException when {@code response} is null */
    public Executed {
      Objects.requireNonNull(response, "response may not be null");
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
   * The business call returned a server error (status 500 or above): its transaction was rolled
   * back, so neither the key nor any write of the call remains, and a retry with the same key runs
   * anew. Send the response as it is.
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
