package dev.outbox.spring.internal;

import org.springframework.boot.health.contributor.Status;

/** What the outbox's health indicators report beyond UP and DOWN. */
public final class OutboxHealth {
    /**
     * Running, but a dependency does not answer (Kafka, PostgreSQL) or a circuit breaker is open: the
     * outbox waits for it and loses nothing. Spring Boot's default aggregation leaves a status outside
     * its order out, so the application's overall health stays UP and a load balancer keeps sending it
     * the requests whose messages the outbox holds until the dependency is back. To count it, add
     * {@code DEGRADED} to {@code management.endpoint.health.status.order}.
     */
    public static final Status DEGRADED =
            new Status("DEGRADED", "running, waiting for a dependency; the outbox holds what it cannot deliver yet");

    private OutboxHealth() {}
}
