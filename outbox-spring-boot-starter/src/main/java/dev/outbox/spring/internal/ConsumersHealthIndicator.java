package dev.outbox.spring.internal;

import dev.outbox.consumer.IdempotentConsumer;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.springframework.boot.health.contributor.AbstractHealthIndicator;
import org.springframework.boot.health.contributor.Health;

/**
 * The health of every {@link IdempotentConsumer} bean, read from {@link IdempotentConsumer#readiness()}:
 * UP when every poll loop runs, holds its group's assignment and has its database and dead-letter
 * circuit breakers closed; DOWN when a poll loop does not run; {@link OutboxHealth#DEGRADED} when
 * every poll loop runs but one waits for a dependency: it has no assignment (its Kafka does not
 * answer, it lost its partitions, or it has not joined its group yet, as readiness has no start-up
 * grace either) or a breaker is open. An assignment without partitions (more instances than
 * partitions) counts as assigned: that consumer is UP, and its details show 0 partitions. Each
 * consumer's details carry the readiness and its reason. A consumer bean that does not report its
 * readiness (a wrapper that does not override {@link IdempotentConsumer#readiness()}) is judged by
 * {@link IdempotentConsumer#isRunning()} alone.
 */
public final class ConsumersHealthIndicator extends AbstractHealthIndicator {
    private final List<IdempotentConsumer> consumers;

    public ConsumersHealthIndicator(List<IdempotentConsumer> consumers) {
        super("outbox consumer health check failed");
        this.consumers = List.copyOf(consumers);
    }

    /**
     * @return the consumer's readiness, or null for an implementation that does not report one (a
     *     delegating wrapper that does not override {@link IdempotentConsumer#readiness()})
     */
    private static IdempotentConsumer.Readiness readiness(IdempotentConsumer consumer) {
        try {
            return consumer.readiness();
        } catch (UnsupportedOperationException e) {
            return null;
        }
    }

    @Override
    protected void doHealthCheck(Health.Builder builder) {
        boolean running = true;
        boolean waiting = false;
        for (IdempotentConsumer consumer : consumers) {
            IdempotentConsumer.Readiness r = readiness(consumer);
            Map<String, Object> details = new LinkedHashMap<>();
            if (r == null) {
                // a bean that does not report its readiness: only whether it runs is known
                boolean runs = consumer.isRunning();
                running &= runs;
                details.put("running", runs);
                details.put(
                        "reason",
                        (runs ? "running" : "not running")
                                + "; its assignment and breakers are not reported (it does not implement readiness())");
                builder.withDetail(consumer.name(), details);
                continue;
            }
            running &= r.running();
            waiting |= !r.assigned() || !r.databaseBreakerClosed() || !r.deadLetterBreakerClosed();
            details.put("running", r.running());
            details.put("assigned", r.assigned());
            details.put("partitions", r.partitions());
            details.put("databaseBreakerClosed", r.databaseBreakerClosed());
            details.put("deadLetterBreakerClosed", r.deadLetterBreakerClosed());
            details.put("reason", r.reason() == null ? "" : r.reason());
            builder.withDetail(consumer.name(), details);
        }
        if (!running) {
            builder.down();
        } else if (waiting) {
            builder.status(OutboxHealth.DEGRADED);
        } else {
            builder.up();
        }
    }
}
