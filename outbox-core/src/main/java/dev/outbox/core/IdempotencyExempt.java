package dev.outbox.core;

import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * The escape hatch of the build-time idempotency rules ({@code dev.outbox.archunit.IdempotencyRules}
 * in the {@code outbox-idempotency-archunit} module): code carrying it is left out of the named
 * rules. It is explicit on purpose: the rule to skip and the reason are written next to the code,
 * where a reviewer sees them, and {@code grep IdempotencyExempt} lists every exception in a code
 * base.
 *
 * <pre>{@code
 * @IdempotencyExempt(rules = IdempotencyExempt.RETRY_BUDGET,
 *     reason = "start-up probe: 3 attempts, once per process")
 * void waitForSchemaRegistry() { ... }
 * }</pre>
 *
 * <p>On a class it covers every method of the class (and the lambdas in them); on a method, that
 * method and its lambdas. Class-file retention: it costs nothing at run time.
 */
@Documented
@Retention(RetentionPolicy.CLASS)
@Target({ElementType.TYPE, ElementType.METHOD, ElementType.CONSTRUCTOR})
public @interface IdempotencyExempt {

    /** Rule: POST and PATCH calls go through the idempotent HTTP client. */
    String OUTBOUND_HTTP = "outbound-http";

    /** Rule: retry loops are limited by a retry budget or a circuit breaker. */
    String RETRY_BUDGET = "retry-budget";

    /** Rule: Kafka listeners that write to the database do so through the dedup primitive. */
    String LISTENER_DEDUP = "listener-dedup";

    /** Rule: idempotency relies on the unique constraint, not on select-then-insert. */
    String INSERT_FIRST = "insert-first";

    /** @return the rules this code is exempt from, among the constants of this annotation */
    String[] rules();

    /** @return why the rule does not apply here; the rules refuse a blank reason */
    String reason();
}
