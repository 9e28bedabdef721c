package dev.outbox.relay.admin;

import dev.outbox.relay.admin.Doctor.Check;
import dev.outbox.relay.admin.Doctor.Verdict;
import java.util.List;

/**
 * The failure modes a live system cannot show, each with the build-time rule or start-up gate that
 * catches it; the doctor lists them as {@link Verdict#BUILD_TIME} checks.
 */
final class BuildTimeRules {

    /** One {@link Verdict#BUILD_TIME} check per rule, in a fixed order. */
    static final List<Check> CHECKS = List.of(
            rule(
                    "client-retry-budget",
                    "Clients retry under a budget or circuit breaker",
                    "dev.outbox.archunit.IdempotencyRules.retriesHaveABudget() (Resilience4j Retry, Spring Retry and hand-written"
                            + " retry loops need a RetryBudget or a circuit breaker)"),
            rule(
                    "key-per-operation",
                    "Clients mint one key per operation, not per attempt",
                    "dev.outbox.archunit.IdempotencyRules.nonIdempotentHttpGoesThroughTheIdempotentClient() (POST/PATCH sent"
                            + " through IdempotentHttpClient, which keeps one key across attempts)"),
            rule(
                    "listener-dedup",
                    "Kafka listeners write through the dedup primitive",
                    "dev.outbox.archunit.IdempotencyRules.kafkaListenersWriteThroughDedup()"),
            rule(
                    "insert-first",
                    "Idempotency checks rely on the unique constraint, not select-then-insert",
                    "dev.outbox.archunit.IdempotencyRules.noSelectThenInsert()"),
            rule(
                    "endpoint-coverage",
                    "Every POST/PATCH endpoint is behind the Idempotency-Key filter",
                    "dev.outbox.http.server.gate.IdempotencyGate at application start"));

    private BuildTimeRules() {}

    private static Check rule(String id, String title, String checkedBy) {
        return new Check(
                id,
                title,
                Verdict.BUILD_TIME,
                "not visible in a live system; checked by " + checkedBy,
                List.of(),
                null);
    }
}
