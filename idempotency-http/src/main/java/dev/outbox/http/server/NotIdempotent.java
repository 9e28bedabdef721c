package dev.outbox.http.server;

import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * Marks a mutating endpoint that deliberately does without {@code Idempotency-Key}, so that the
 * start-up gate ({@link dev.outbox.http.server.gate.IdempotencyGate}) lets it pass and reports it,
 * with its reason, at every start.
 *
 * <p>Put it on a servlet class (every mutating method it handles), on its {@code doPost}/{@code
 * doPatch}/{@code doPut}/{@code doDelete} method (that method only), on a Spring MVC controller
 * class or on one handler method. Typical reasons: the endpoint is idempotent by its own key (a
 * webhook deduplicated by the sender's event id), or it changes nothing a retry could double.
 *
 * <pre>{@code
 * @NotIdempotent(reason = "Stripe webhook: deduplicated by the event id in processed_message")
 * @PostMapping("/webhooks/stripe")
 * void stripe(@RequestBody String event) { ... }
 * }</pre>
 */
@Documented
@Retention(RetentionPolicy.RUNTIME)
@Target({ElementType.TYPE, ElementType.METHOD})
public @interface NotIdempotent {
    /**
     * @return why the endpoint needs no key, for the start-up report and for reviewers; must not be
     *     blank (the gate refuses an exemption without a reason)
     */
    String reason();
}
