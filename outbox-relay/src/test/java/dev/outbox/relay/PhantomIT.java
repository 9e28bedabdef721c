package dev.outbox.relay;

import static dev.outbox.migrations.jooq.Tables.OUTBOX_MESSAGE;
import static dev.outbox.relay.Fixtures.OUTBOX;
import static dev.outbox.relay.Fixtures.message;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.core.OutboxHeaders;
import dev.outbox.core.OutboxMessage;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import org.jooq.DSLContext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

@ExtendWith(RealServices.class)
class PhantomIT {

    /**
     * G2 no phantom: transactions that roll back publish nothing, even when they overlap in time with
     * transactions that commit, while a relay is running and woken by every commit.
     */
    @Test
    void rolledBackAppendsNeverReachKafka(TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("phantom");
        kafka.createTopic(topic, 4);
        DSLContext dsl = db.dsl();
        Set<UUID> committed = new HashSet<>();
        Set<UUID> rolledBack = new HashSet<>();
        try (Relay relay = Fixtures.relay(db, kafka, "phantom-relay").build();
                Fixtures.Collector kafkaSide = new Fixtures.Collector(kafka.bootstrapServers(), topic)) {
            relay.start();
            for (int round = 0; round < 40; round++) {
                int r = round;
                // a committing transaction
                committed.addAll(Fixtures.commit(
                        dsl,
                        List.of(
                                message(topic, "k-" + (r % 7), "commit-" + r),
                                message(topic, null, "commit-nokey-" + r))));
                // a rolled-back one, alone
                List<UUID> lost = new ArrayList<>();
                try {
                    dsl.transaction(tx -> {
                        lost.addAll(
                                OUTBOX.appendAll(tx.dsl(), List.of(message(topic, "k-" + (r % 7), "rollback-" + r))));
                        throw new IllegalStateException("business rule says no");
                    });
                } catch (IllegalStateException expected) {
                    // rolled back
                }
                rolledBack.addAll(lost);
                // overlapping: a rolled-back transaction open while another commits
                List<UUID> overlapLost = new ArrayList<>();
                try {
                    dsl.transaction(outer -> {
                        overlapLost.addAll(OUTBOX.appendAll(
                                outer.dsl(), List.of(message(topic, "k-" + (r % 5), "overlap-rollback-" + r))));
                        committed.addAll(
                                Fixtures.commit(dsl, List.of(message(topic, "k-" + (r % 5), "overlap-commit-" + r))));
                        throw new IllegalStateException("fails after its neighbour committed");
                    });
                } catch (IllegalStateException expected) {
                    // rolled back
                }
                rolledBack.addAll(overlapLost);
            }
            // a last committed message: once it and all before it arrived, the relay has passed every rollback
            UUID sentinel = Fixtures.commit(dsl, List.of(message(topic, "sentinel", "last")))
                    .get(0);
            committed.add(sentinel);
            assertThat(rolledBack).hasSize(80);
            await().atMost(Duration.ofSeconds(90))
                    .untilAsserted(() -> assertThat(kafkaSide.ids()).containsAll(committed));
            await().atMost(Duration.ofSeconds(30))
                    .untilAsserted(
                            () -> assertThat(dsl.fetchCount(OUTBOX_MESSAGE)).isZero());
            Set<UUID> arrived = kafkaSide.ids();
            assertThat(arrived).as("exactly the committed ids arrive").isEqualTo(committed);
            assertThat(arrived).doesNotContainAnyElementsOf(rolledBack);
            assertThat(kafkaSide.records())
                    .extracting(Fixtures.Received::payload)
                    .noneMatch(p -> p.contains("rollback"));
        }
    }

    /** Every record carries the contract headers, the stored key and payload, and the producer's extra headers. */
    @Test
    void recordsCarryKeyPayloadAndHeaders(TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("headers");
        kafka.createTopic(topic, 2);
        String trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        OutboxMessage keyed = OutboxMessage.of(
                        topic, "order-1", "OrderPlaced", "application/json", "{\"a\":1}".getBytes())
                .withTraceparent(trace)
                .withHeader("tenant", "acme");
        OutboxMessage keyless = OutboxMessage.of(topic, null, "Ping", "text/plain", "ping".getBytes());
        OutboxMessage tombstone = OutboxMessage.of(topic, "order-1", "OrderDeleted", "text/plain", null);
        List<UUID> ids = Fixtures.commit(db.dsl(), List.of(keyed, keyless, tombstone));
        try (Relay relay = Fixtures.relay(db, kafka, "headers-relay").build();
                Fixtures.Collector kafkaSide = new Fixtures.Collector(kafka.bootstrapServers(), topic)) {
            relay.start();
            await().atMost(Duration.ofSeconds(60))
                    .untilAsserted(() -> assertThat(kafkaSide.ids()).containsAll(ids));
            var byId = new HashMap<UUID, Fixtures.Received>();
            kafkaSide.records().forEach(r -> byId.put(r.messageId(), r));
            Fixtures.Received first = byId.get(ids.get(0));
            assertThat(first.key()).isEqualTo("order-1");
            assertThat(first.payload()).isEqualTo("{\"a\":1}");
            assertThat(first.headers())
                    .containsEntry(OutboxHeaders.MESSAGE_ID, ids.get(0).toString())
                    .containsEntry(OutboxHeaders.MESSAGE_TYPE, "OrderPlaced")
                    .containsEntry(OutboxHeaders.CONTENT_TYPE, "application/json")
                    .containsEntry(OutboxHeaders.TRACEPARENT, trace)
                    .containsEntry("tenant", "acme")
                    .containsKey(OutboxHeaders.OUTBOX_ID);
            assertThat(first.headers().get(OutboxHeaders.CREATED_AT))
                    .matches("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{6}Z");
            assertThat(byId.get(ids.get(1)).key()).isNull();
            assertThat(byId.get(ids.get(1)).headers()).doesNotContainKey(OutboxHeaders.TRACEPARENT);
            assertThat(byId.get(ids.get(2)).payload()).isNull();
            assertThat(Long.parseLong(byId.get(ids.get(2)).headers().get(OutboxHeaders.OUTBOX_ID)))
                    .isGreaterThan(first.outboxId());
            await().atMost(Duration.ofSeconds(30))
                    .untilAsserted(() -> assertThat(relay.isReady()).isTrue());
        }
    }
}
