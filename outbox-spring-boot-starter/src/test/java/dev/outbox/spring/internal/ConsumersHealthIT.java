package dev.outbox.spring.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.consumer.IdempotentConsumer;
import dev.outbox.testkit.TestKafka;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import javax.sql.DataSource;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.springframework.boot.health.contributor.Health;
import org.springframework.boot.health.contributor.Status;
import org.springframework.jdbc.datasource.DriverManagerDataSource;

/**
 * The consumers' health indicator over real {@link IdempotentConsumer}s: one whose Kafka does not
 * answer keeps its poll loop running and its breakers closed, yet has no partition assignment, and
 * the indicator reports it {@link OutboxHealth#DEGRADED} with the consumer's own reason, as the
 * README promises while a dependency is away; consumers on the in-JVM broker are UP once assigned,
 * also the one that got no partition because the group has more members than the topic has
 * partitions. Fails if the indicator ignored the assignment (UP against a closed port, as it was) or
 * took an empty assignment for a missing one. No record is handled, so the data source is never
 * connected to.
 */
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class ConsumersHealthIT {
    private static final DataSource NEVER_CONNECTED = new DriverManagerDataSource("jdbc:postgresql://127.0.0.1:1/none");
    private static final Duration WAIT = Duration.ofSeconds(60);

    @Test
    void aConsumerWhoseKafkaDoesNotAnswerIsDegradedWithItsReason() {
        String group = "health-unreachable-group";
        try (IdempotentConsumer consumer = consumer("127.0.0.1:1", group, "health-unreachable")) {
            consumer.start();
            ConsumersHealthIndicator indicator = new ConsumersHealthIndicator(List.of(consumer));
            // no grace period, as readiness() has none: waiting for the first assignment is waiting for Kafka
            await().during(Duration.ofSeconds(3)).atMost(Duration.ofSeconds(10)).untilAsserted(() -> {
                Health health = indicator.health();
                assertThat(consumer.readiness().running()).isTrue();
                assertThat(health.getStatus()).as("%s", health).isEqualTo(OutboxHealth.DEGRADED);
                assertThat(details(health, consumer))
                        .containsEntry("running", true)
                        .containsEntry("assigned", false)
                        .containsEntry("databaseBreakerClosed", true)
                        .containsEntry("deadLetterBreakerClosed", true)
                        .containsEntry("reason", "no partition assignment from group " + group + " yet");
            });
            consumer.close();
            assertThat(indicator.health().getStatus()).isEqualTo(Status.DOWN);
        }
    }

    @Test
    void consumersOnKafkaAreUpOnceAssignedAlsoWithoutPartitions() {
        TestKafka kafka = TestKafka.shared();
        String topic = TestKafka.uniqueTopic("health");
        kafka.createTopic(topic, 1);
        String group = topic + "-group";
        try (IdempotentConsumer a = consumer(kafka.bootstrapServers(), group, topic, "health-a");
                IdempotentConsumer b = consumer(kafka.bootstrapServers(), group, topic, "health-b")) {
            a.start();
            b.start();
            ConsumersHealthIndicator indicator = new ConsumersHealthIndicator(List.of(a, b));
            await().atMost(WAIT).untilAsserted(() -> {
                Health health = indicator.health();
                assertThat(health.getStatus()).as("%s", health).isEqualTo(Status.UP);
                assertThat(details(health, a)).containsEntry("assigned", true).containsEntry("reason", "");
                assertThat(details(health, b)).containsEntry("assigned", true).containsEntry("reason", "");
                assertThat(List.of(
                                details(health, a).get("partitions"),
                                details(health, b).get("partitions")))
                        .as("one member holds the topic's only partition, the other none")
                        .containsExactlyInAnyOrder(0, 1);
            });
        }
    }

    private static IdempotentConsumer consumer(String bootstrap, String group, String name) {
        return consumer(bootstrap, group, name, name);
    }

    private static IdempotentConsumer consumer(String bootstrap, String group, String topic, String name) {
        return IdempotentConsumer.builder()
                .kafkaProperties(Map.of(
                        "bootstrap.servers",
                        bootstrap,
                        "group.id",
                        group,
                        "session.timeout.ms",
                        "10000",
                        "heartbeat.interval.ms",
                        "1000"))
                .topics(topic)
                .consumerName(name)
                .dataSource(NEVER_CONNECTED)
                .handler((message, tx) -> {})
                .purgeInterval(Duration.ZERO)
                .closeTimeout(Duration.ofSeconds(2))
                .meterRegistry(new SimpleMeterRegistry())
                .build();
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> details(Health health, IdempotentConsumer consumer) {
        return (Map<String, Object>) health.getDetails().get(consumer.name());
    }
}
