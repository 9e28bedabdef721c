package dev.outbox.relay;

import static dev.outbox.migrations.jooq.Tables.OUTBOX_MESSAGE;
import static dev.outbox.relay.Fixtures.message;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.core.OutboxMessage;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.config.ConfigResource;
import org.jooq.DSLContext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

@ExtendWith(RealServices.class)
class ReadinessIT {

    /**
     * Readiness tells an operator whether the relay can publish. On a cluster of three brokers with a
     * topic that asks for three in-sync replicas, one broker is stopped: the cluster still answers the
     * relay's probe, but every send fails (not enough replicas), the sends' breaker opens, and the
     * relay is live but not ready; before, it stayed ready because the cluster answered. Once the topic
     * asks for two, every message arrives and the relay is ready again (G1).
     */
    @Test
    @Timeout(value = 5, unit = TimeUnit.MINUTES)
    void aRelayWhoseSendsAllFailWhileKafkaAnswersIsNotReady(TestDatabase db) throws Exception {
        String topic = TestKafka.uniqueTopic("too-few-replicas");
        try (TestKafka cluster = TestKafka.startCluster(3, Map.of())) {
            try (Admin admin = cluster.admin()) {
                admin.createTopics(
                                List.of(new NewTopic(topic, 2, (short) 3).configs(Map.of("min.insync.replicas", "3"))))
                        .all()
                        .get(30, TimeUnit.SECONDS);
            }
            cluster.createTopic(topic, 2); // exists: waits for the leaders
            DSLContext dsl = db.dsl();
            try (Relay relay = Fixtures.outageRelay(
                                    db,
                                    cluster.bootstrapServers(),
                                    "readiness-relay",
                                    new SimpleMeterRegistry(),
                                    Map.of())
                            .build();
                    Fixtures.Collector collector = new Fixtures.Collector(cluster.bootstrapServers(), topic)) {
                relay.start();
                List<UUID> ids = new ArrayList<>(append(dsl, topic, 0, 20));
                await().atMost(Duration.ofSeconds(60))
                        .untilAsserted(() -> assertThat(collector.ids()).containsAll(ids));
                await().atMost(Duration.ofSeconds(30)).until(relay::isReady);

                cluster.stopBroker(2);
                ids.addAll(append(dsl, topic, 20, 60));
                await("not ready while every send fails")
                        .atMost(Duration.ofSeconds(60))
                        .pollInterval(Duration.ofMillis(100))
                        .until(() -> !relay.isReady());
                assertThat(relay.isLive()).as("live: a restart would not help").isTrue();
                // and it stays not ready while the sends keep failing, though the cluster answers its probe
                await().during(Duration.ofSeconds(5))
                        .atMost(Duration.ofSeconds(10))
                        .pollInterval(Duration.ofMillis(100))
                        .until(() -> !relay.isReady());

                try (Admin admin = cluster.admin()) {
                    admin.incrementalAlterConfigs(Map.of(
                                    new ConfigResource(ConfigResource.Type.TOPIC, topic),
                                    List.of(new AlterConfigOp(
                                            new ConfigEntry("min.insync.replicas", "2"), AlterConfigOp.OpType.SET))))
                            .all()
                            .get(30, TimeUnit.SECONDS);
                }
                await().atMost(Duration.ofSeconds(60))
                        .untilAsserted(() -> assertThat(collector.ids()).containsAll(ids));
                await().atMost(Duration.ofSeconds(30)).until(relay::isReady);
                await().atMost(Duration.ofSeconds(30))
                        .untilAsserted(
                                () -> assertThat(dsl.fetchCount(OUTBOX_MESSAGE)).isZero());
            }
        }
    }

    private static List<UUID> append(DSLContext dsl, String topic, int from, int to) {
        List<OutboxMessage> batch = new ArrayList<>();
        for (int i = from; i < to; i++) {
            batch.add(message(topic, "key-" + i, "m-" + i));
        }
        return Fixtures.commit(dsl, batch);
    }
}
