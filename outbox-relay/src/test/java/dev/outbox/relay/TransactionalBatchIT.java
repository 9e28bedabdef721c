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
import org.apache.kafka.clients.admin.NewTopic;
import org.jooq.DSLContext;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/** The transactional publish mode ({@link PublishMode#TRANSACTIONAL}) on a real broker. */
@ExtendWith(RealServices.class)
@Tag("integration")
class TransactionalBatchIT {
    private static final String READ_COMMITTED = "read_committed";

    /**
     * G3 and G7 in the transactional mode: one batch holds a key's message, a message too large for
     * the topic's {@code max.message.bytes} (refused by the broker, after the producer sent it), the
     * key's next message and messages of other keys of the shard. Its transaction is aborted: a
     * {@code read_committed} consumer sees each good message exactly once, never the aborted copies
     * (which a {@code read_uncommitted} consumer does see: they reached the log), the poison row is
     * parked with its error and the rest is published in the next transaction, in key order.
     */
    @Test
    @Timeout(value = 3, unit = TimeUnit.MINUTES)
    void aBatchWithARecordTheBrokerRefusesIsInvisibleAndTheRestFollows(TestDatabase db, TestKafka kafka)
            throws Exception {
        String topic = TestKafka.uniqueTopic("tx-partial");
        try (Admin admin = kafka.admin()) {
            admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1).configs(Map.of("max.message.bytes", "10240"))))
                    .all()
                    .get(30, TimeUnit.SECONDS);
        }
        kafka.createTopic(topic, 3); // exists: waits for the leaders
        DSLContext dsl = db.dsl();
        String key = "p-key";
        List<OutboxMessage> batch = new ArrayList<>();
        batch.add(message(topic, key, "before"));
        batch.add(OutboxMessage.of(topic, key, "Big", "text/plain", new byte[20_000]));
        batch.add(message(topic, key, "after"));
        for (String neighbour : Fixtures.sameShardKeys(key, 20)) {
            batch.add(message(topic, neighbour, "neighbour"));
        }
        List<UUID> ids = Fixtures.commit(dsl, batch);
        UUID poison = ids.get(1);
        List<UUID> good = new ArrayList<>(ids);
        good.remove(poison);
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        try (Fixtures.Collector committed = new Fixtures.Collector(
                        kafka.bootstrapServers(), topic, Map.of("isolation.level", READ_COMMITTED));
                Fixtures.Collector everything = new Fixtures.Collector(
                        kafka.bootstrapServers(), topic, Map.of("isolation.level", "read_uncommitted"));
                Relay relay = Fixtures.relay(db, kafka.bootstrapServers(), "tx-partial", registry)
                        .publishMode(PublishMode.TRANSACTIONAL)
                        .build()) {
            relay.start();
            await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> {
                assertThat(committed.ids()).containsAll(good);
                var row = dsl.selectFrom(OUTBOX_MESSAGE)
                        .where(OUTBOX_MESSAGE.MESSAGE_ID.eq(poison))
                        .fetchSingle();
                assertThat(row.getParkedAt()).isNotNull();
                assertThat(row.getLastError()).contains("RecordTooLargeException");
                assertThat(dsl.fetchCount(OUTBOX_MESSAGE, OUTBOX_MESSAGE.TOPIC.eq(topic)))
                        .isOne();
            });
            List<UUID> seen = committed.records().stream()
                    .map(Fixtures.Received::messageId)
                    .toList();
            assertThat(seen)
                    .as("read_committed: every good message once, no aborted copy, no poison")
                    .doesNotHaveDuplicates()
                    .containsExactlyInAnyOrderElementsOf(good);
            assertThat(committed.firstAppearancesByKey().get(key))
                    .as("G3: the key's order around the parked row")
                    .hasSize(2)
                    .isSorted();
            assertThat(Fixtures.counter(registry, "outbox.relay.transactions.aborted"))
                    .as("aborted transactions")
                    .isPositive();
            assertThat(Fixtures.counter(registry, "outbox.relay.parked")).isOne();
            await().atMost(Duration.ofSeconds(10))
                    .untilAsserted(() -> assertThat(everything.records().size())
                            .as("the aborted batch's records reached the log, where only read_uncommitted sees them")
                            .isGreaterThan(good.size()));
        } finally {
            dsl.deleteFrom(OUTBOX_MESSAGE)
                    .where(OUTBOX_MESSAGE.MESSAGE_ID.eq(poison))
                    .execute();
        }
    }
}
