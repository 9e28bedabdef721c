package dev.outbox.spring.internal;

import static org.assertj.core.api.Assertions.assertThat;

import dev.outbox.consumer.IdempotentConsumer;
import dev.outbox.relay.Relay;
import java.lang.reflect.Proxy;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.springframework.boot.health.actuate.endpoint.HttpCodeStatusMapper;
import org.springframework.boot.health.actuate.endpoint.StatusAggregator;
import org.springframework.boot.health.contributor.Status;

/**
 * What the relay's and the consumers' health indicators report, and what Spring Boot's default
 * aggregation makes of it: a dependency outage the outbox absorbs (DEGRADED) leaves the application
 * UP and its health endpoint at 200, so that a load balancer does not take the service out while
 * the outbox holds its messages; a loop that does not run is DOWN.
 */
class OutboxHealthTest {

    @Test
    void aRelayWaitingForADependencyIsDegradedAndADeadOneIsDown() {
        assertThat(new RelayHealthIndicator(relay(true, true)).health().getStatus())
                .isEqualTo(Status.UP);
        assertThat(new RelayHealthIndicator(relay(true, false)).health().getStatus())
                .isEqualTo(OutboxHealth.DEGRADED);
        assertThat(new RelayHealthIndicator(relay(false, false)).health().getStatus())
                .isEqualTo(Status.DOWN);
    }

    @Test
    void consumersWithAnOpenBreakerAreDegradedAndAStoppedOneIsDown() {
        IdempotentConsumer healthy = consumer("a", true, true);
        assertThat(new ConsumersHealthIndicator(List.of(healthy)).health().getStatus())
                .isEqualTo(Status.UP);
        assertThat(new ConsumersHealthIndicator(List.of(healthy, consumer("b", true, false)))
                        .health()
                        .getStatus())
                .isEqualTo(OutboxHealth.DEGRADED);
        assertThat(new ConsumersHealthIndicator(List.of(consumer("b", true, false), consumer("c", false, true)))
                        .health()
                        .getStatus())
                .isEqualTo(Status.DOWN);
    }

    /**
     * A running consumer without its group's assignment (Kafka does not answer, the partitions were
     * lost) waits for Kafka: DEGRADED, with its reason in the details; an empty assignment (more
     * members than partitions) is an assignment: UP. Fails if the indicator ignored the assignment.
     */
    @Test
    void aConsumerWithoutAnAssignmentIsDegradedAndAnEmptyAssignmentIsUp() {
        String reason = "no partition assignment from group orders yet";
        var unassigned = new ConsumersHealthIndicator(List.of(consumer("a", true, false, 0, true, reason))).health();
        assertThat(unassigned.getStatus()).isEqualTo(OutboxHealth.DEGRADED);
        assertThat(unassigned.getDetails().get("a").toString())
                .contains("assigned=false")
                .contains(reason);
        assertThat(new ConsumersHealthIndicator(List.of(consumer("a", true, true, 0, true, "")))
                        .health()
                        .getStatus())
                .isEqualTo(Status.UP);
        assertThat(new ConsumersHealthIndicator(List.of(
                                consumer("a", true, false, 0, true, reason), consumer("b", false, true, 0, true, "")))
                        .health()
                        .getStatus())
                .isEqualTo(Status.DOWN);
    }

    /**
     * A consumer bean that does not report its readiness (a delegating wrapper that does not override the
     * interface's default readiness(), which throws) is judged by isRunning(): UP while it runs, DOWN once
     * it stopped. It was DOWN whatever it did, taking the application's health down with it.
     */
    @Test
    void aConsumerThatDoesNotReportReadinessIsJudgedByWhetherItRuns() {
        var running = new ConsumersHealthIndicator(List.of(wrapper("wrapped", true))).health();
        assertThat(running.getStatus()).isEqualTo(Status.UP);
        assertThat(running.getDetails().get("wrapped").toString())
                .contains("running=true")
                .contains("its assignment and breakers are not reported")
                .doesNotContain("assigned")
                .doesNotContain("BreakerClosed");
        assertThat(new ConsumersHealthIndicator(List.of(wrapper("wrapped", false)))
                        .health()
                        .getStatus())
                .isEqualTo(Status.DOWN);
    }

    @Test
    void springBootsDefaultAggregationKeepsTheApplicationUpWhenTheOutboxIsDegraded() {
        assertThat(StatusAggregator.getDefault().getAggregateStatus(Set.of(Status.UP, OutboxHealth.DEGRADED)))
                .isEqualTo(Status.UP);
        assertThat(HttpCodeStatusMapper.DEFAULT.getStatusCode(OutboxHealth.DEGRADED))
                .isEqualTo(200);
        assertThat(StatusAggregator.getDefault().getAggregateStatus(Set.of(OutboxHealth.DEGRADED, Status.DOWN)))
                .isEqualTo(Status.DOWN);
    }

    private static Relay relay(boolean live, boolean ready) {
        return (Relay) Proxy.newProxyInstance(
                Relay.class.getClassLoader(),
                new Class<?>[] {Relay.class},
                (proxy, method, args) -> switch (method.getName()) {
                    case "isLive" -> live;
                    case "isReady" -> ready;
                    case "instanceId" -> "relay-test";
                    case "ownedShards" -> Set.of(1, 2);
                    default -> throw new UnsupportedOperationException(method.getName());
                });
    }

    /** A consumer that reports whether it runs, and inherits the interface's readiness(). */
    private static IdempotentConsumer wrapper(String name, boolean running) {
        return new IdempotentConsumer() {
            @Override
            public void start() {}

            @Override
            public long purgeProcessed(Duration olderThan) {
                return 0;
            }

            @Override
            public String name() {
                return name;
            }

            @Override
            public boolean isRunning() {
                return running;
            }

            @Override
            public void close() {}
        };
    }

    private static IdempotentConsumer consumer(String name, boolean running, boolean breakersClosed) {
        return consumer(name, running, true, 1, breakersClosed, breakersClosed ? "" : "the database breaker is open");
    }

    private static IdempotentConsumer consumer(
            String name, boolean running, boolean assigned, int partitions, boolean breakersClosed, String reason) {
        var readiness = new IdempotentConsumer.Readiness(
                running && assigned && breakersClosed, running, assigned, partitions, breakersClosed, true, reason);
        return (IdempotentConsumer) Proxy.newProxyInstance(
                IdempotentConsumer.class.getClassLoader(),
                new Class<?>[] {IdempotentConsumer.class},
                (proxy, method, args) -> switch (method.getName()) {
                    case "readiness" -> readiness;
                    case "name" -> name;
                    default -> throw new UnsupportedOperationException(method.getName());
                });
    }
}
