package dev.outbox.relay;

import static dev.outbox.relay.Fixtures.message;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.slf4j.LoggerFactory;

/**
 * What G1 assumes of Kafka, told by the relay itself, on three real brokers: the relay deletes a row once its
 * record is acknowledged ({@code acks=all}), so a topic whose replication can lose an acknowledged record
 * ({@code min.insync.replicas} 1, Kafka's default, on a replicated topic) loses messages with a broker. The
 * relay says so once, at WARN, for the topic it publishes to, and counts it in {@code
 * outbox.relay.unsafe.topics}; a topic with two replicas in sync is not counted and not warned about.
 */
@ExtendWith(RealServices.class)
class TopicDurabilityIT {

    @Test
    void aTopicThatCanLoseAcknowledgedRecordsIsWarnedAboutAndCounted(TestDatabase db) throws Exception {
        Logger root = (Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
        ListAppender<ILoggingEvent> events = new ListAppender<>();
        events.start();
        root.addAppender(events);
        try (TestKafka cluster = TestKafka.startCluster(3, Map.of())) {
            try (Admin admin = cluster.admin()) {
                admin.createTopics(List.of(
                                new NewTopic("durable", 1, (short) 3).configs(Map.of("min.insync.replicas", "2")),
                                new NewTopic("leader-alone", 1, (short) 3)))
                        .all()
                        .get(30, TimeUnit.SECONDS);
            }
            List<UUID> ids = Fixtures.commit(
                    db.dsl(), List.of(message("durable", "k-1", "a"), message("leader-alone", "k-2", "b")));
            SimpleMeterRegistry registry = new SimpleMeterRegistry();
            try (Relay relay = Fixtures.relay(db, cluster.bootstrapServers(), "durability", registry)
                            .build();
                    Fixtures.Collector durable = new Fixtures.Collector(cluster.bootstrapServers(), "durable");
                    Fixtures.Collector alone = new Fixtures.Collector(cluster.bootstrapServers(), "leader-alone")) {
                relay.start();
                await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> {
                    assertThat(durable.ids()).contains(ids.get(0));
                    assertThat(alone.ids()).contains(ids.get(1));
                });
                await().atMost(Duration.ofSeconds(30))
                        .until(() -> Fixtures.gauge(registry, "outbox.relay.unsafe.topics") == 1.0);
            }
        } finally {
            root.detachAppender(events);
        }
        List<String> warnings = events.list.stream()
                .filter(e -> e.getLevel() == Level.WARN)
                .map(ILoggingEvent::getFormattedMessage)
                .filter(m -> m.contains("min.insync.replicas"))
                .toList();
        assertThat(warnings)
                .singleElement()
                .asString()
                .contains(
                        "topic leader-alone: replication factor 3, min.insync.replicas 1",
                        "leader alone",
                        "Set min.insync.replicas=2");
    }
}
