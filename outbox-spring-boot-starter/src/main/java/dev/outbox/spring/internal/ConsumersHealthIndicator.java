package dev.outbox.spring.internal;

import dev.outbox.consumer.IdempotentConsumer;
import java.util.List;
import java.util.Map;
import org.springframework.boot.health.contributor.AbstractHealthIndicator;
import org.springframework.boot.health.contributor.Health;

/**
 * UP when every {@link IdempotentConsumer} bean's poll loop is running and its database and
 * dead-letter circuit breakers are closed ({@link IdempotentConsumer#readiness()}); {@link
 * OutboxHealth#DEGRADED} when every poll loop runs but a breaker is open; DOWN when a poll loop does
 * not run. A consumer without partitions (more instances than partitions) is not a failure: its
 * details say so.
 */
public final class ConsumersHealthIndicator extends AbstractHealthIndicator {
    private final List<IdempotentConsumer> consumers;

    public ConsumersHealthIndicator(List<IdempotentConsumer> consumers) {
        super("outbox consumer health check failed");
        this.consumers = List.copyOf(consumers);
    }

    @Override
    protected void doHealthCheck(Health.Builder builder) {
        boolean running = true;
        boolean breakersClosed = true;
        for (IdempotentConsumer consumer : consumers) {
            IdempotentConsumer.Readiness r = consumer.readiness();
            running &= r.running();
            breakersClosed &= r.databaseBreakerClosed() && r.deadLetterBreakerClosed();
            builder.withDetail(
                    consumer.name(),
                    Map.of(
                            "running", r.running(),
                            "partitions", r.partitions(),
                            "databaseBreakerClosed", r.databaseBreakerClosed(),
                            "deadLetterBreakerClosed", r.deadLetterBreakerClosed(),
                            "reason", r.reason() == null ? "" : r.reason()));
        }
        if (!running) {
            builder.down();
        } else if (!breakersClosed) {
            builder.status(OutboxHealth.DEGRADED);
        } else {
            builder.up();
        }
    }
}
