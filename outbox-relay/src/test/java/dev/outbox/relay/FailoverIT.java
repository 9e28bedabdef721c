package dev.outbox.relay;

import static dev.outbox.migrations.jooq.Tables.OUTBOX_MESSAGE;
import static dev.outbox.relay.Fixtures.message;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.core.OutboxMessage;
import dev.outbox.relay.internal.RelayEngine;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import org.jooq.DSLContext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

@ExtendWith(RealServices.class)
class FailoverIT {
    private static final int MESSAGES = 5_000;
    private static final int KEYS = 200;
    private static final int PHASES = 10;

    /**
     * G1 no loss and G3 per-key order across failover: three relays drain 5,000 messages over 200 keys
     * on all 64 shards while, between append phases, one relay closes, new ones start, and one is
     * halted without close() (a crash: its leases must expire and be taken over). Every committed id
     * arrives at least once, and per key the first appearances in Kafka follow the outbox id (commit)
     * order. The duplicate count is printed.
     */
    @Test
    void relaysComingAndGoingLoseNothingAndKeepPerKeyOrder(TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("failover");
        kafka.createTopic(topic, 8);
        DSLContext dsl = db.dsl();
        List<Relay> running = new ArrayList<>();
        Set<UUID> committed = new HashSet<>();
        long started = System.nanoTime();
        try (Fixtures.Collector kafkaSide = new Fixtures.Collector(kafka.bootstrapServers(), topic)) {
            Relay a = start(db, kafka, "fo-a", running);
            Relay b = start(db, kafka, "fo-b", running);
            start(db, kafka, "fo-c", running);
            int perPhase = MESSAGES / PHASES;
            int seq = 0;
            for (int phase = 0; phase < PHASES; phase++) {
                // several small transactions per phase, each key's messages appended in order by this one writer
                for (int tx = 0; tx < 10; tx++) {
                    List<OutboxMessage> batch = new ArrayList<>();
                    for (int i = 0; i < perPhase / 10; i++, seq++) {
                        batch.add(message(topic, "key-" + (seq % KEYS), "m-" + seq));
                    }
                    committed.addAll(Fixtures.commit(dsl, batch));
                }
                switch (phase) {
                    case 1 -> {
                        a.close();
                        running.remove(a);
                    }
                    case 3 -> start(db, kafka, "fo-d", running);
                    case 5 -> {
                        ((RelayEngine) b).halt();
                        running.remove(b);
                    }
                    case 7 -> start(db, kafka, "fo-e", running);
                    default -> {}
                }
            }
            assertThat(committed).hasSize(MESSAGES);
            await().atMost(Duration.ofSeconds(180))
                    .untilAsserted(() -> assertThat(kafkaSide.ids()).containsAll(committed));
            await().atMost(Duration.ofSeconds(30))
                    .untilAsserted(
                            () -> assertThat(dsl.fetchCount(OUTBOX_MESSAGE)).isZero());
            // the crashed relay's shards were taken over by the survivors
            Set<Integer> owned = new HashSet<>();
            await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> {
                owned.clear();
                running.forEach(r -> owned.addAll(r.ownedShards()));
                assertThat(owned).hasSize(64);
            });

            Map<String, List<Long>> byKey = kafkaSide.firstAppearancesByKey();
            assertThat(byKey).hasSize(KEYS);
            for (var e : byKey.entrySet()) {
                assertThat(e.getValue())
                        .as("first appearances of key %s follow commit order", e.getKey())
                        .isSorted();
            }
            int records = kafkaSide.records().size();
            System.out.printf(
                    "[failover] %d messages, %d records in Kafka, %d duplicates, %.1f s%n",
                    MESSAGES, records, records - MESSAGES, (System.nanoTime() - started) / 1e9);
        } finally {
            running.forEach(Relay::close);
        }
    }

    private static Relay start(TestDatabase db, TestKafka kafka, String id, List<Relay> running) {
        Relay r = Fixtures.relay(db, kafka, id).batchSize(100).build();
        r.start();
        running.add(r);
        return r;
    }
}
