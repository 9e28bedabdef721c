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
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.jooq.DSLContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * A message whose topic does not exist, on a broker that does not create topics: Kafka reports it
 * as retriable (the topic's metadata never arrives within {@code max.block.ms}), so without a bound
 * it would hold its shard forever.
 */
@ExtendWith(RealServices.class)
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class UnknownTopicIT {
    private static final String PRESENT = "present";
    private static final String MISSING = "missing-topic";

    private TestKafka broker;

    @BeforeAll
    void startBrokerWithoutAutoCreate() {
        broker = TestKafka.startInJvm(Map.of("auto.create.topics.enable", "false"));
        broker.createTopic(PRESENT, 4);
    }

    @AfterAll
    void stopBroker() {
        if (broker != null) {
            broker.close();
        }
    }

    /**
     * G7 poison isolation, PARK_AND_CONTINUE: a row for a topic that does not exist fails retriably
     * while Kafka acknowledges every other record; each such failure is counted in {@code attempts},
     * and at {@code maxAttempts} (3) the row is parked with its last error, counted in the parked
     * metric. Every other message is delivered, those of its shard and of its own key included, and
     * the missing topic was never created.
     */
    @Test
    void parksARowForAMissingTopicAfterMaxAttempts(TestDatabase db) throws Exception {
        DSLContext dsl = db.dsl();
        String key = "c-key";
        List<OutboxMessage> batch = new ArrayList<>();
        batch.add(message(MISSING, key, "lost"));
        batch.add(message(PRESENT, key, "after-1"));
        batch.add(message(PRESENT, key, "after-2"));
        for (String n : Fixtures.sameShardKeys(key, 5)) {
            batch.add(message(PRESENT, n, "neighbour"));
        }
        for (int i = 0; i < 40; i++) {
            batch.add(message(PRESENT, "other-" + i, "o-" + i));
        }
        List<UUID> ids = Fixtures.commit(dsl, batch);
        UUID bad = ids.get(0);
        List<UUID> good = ids.subList(1, ids.size());
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        try {
            try (Relay relay = relay(db, "missing-continue", registry, ParkPolicy.PARK_AND_CONTINUE, 3);
                    Fixtures.Collector kafkaSide = new Fixtures.Collector(broker.bootstrapServers(), PRESENT)) {
                relay.start();
                await().atMost(Duration.ofSeconds(120))
                        .untilAsserted(() -> assertThat(kafkaSide.ids()).containsAll(good));
                var row = dsl.selectFrom(OUTBOX_MESSAGE)
                        .where(OUTBOX_MESSAGE.MESSAGE_ID.eq(bad))
                        .fetchSingle();
                assertThat(row.getParkedAt())
                        .as("the key's later rows flowed only after the row was parked")
                        .isNotNull();
                assertThat(row.getAttempts()).isEqualTo(3);
                assertThat(row.getLastError()).contains("TimeoutException").contains(MISSING);
                List<UUID> keyOrder = kafkaSide.records().stream()
                        .filter(r -> key.equals(r.key()))
                        .sorted(Comparator.comparingLong(Fixtures.Received::offset))
                        .map(Fixtures.Received::messageId)
                        .distinct()
                        .toList();
                assertThat(keyOrder).containsExactly(ids.get(1), ids.get(2));
                await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> {
                    assertThat(dsl.fetchCount(OUTBOX_MESSAGE)).isOne();
                    assertThat(Fixtures.counter(registry, "outbox.relay.parked"))
                            .isOne();
                    assertThat(Fixtures.gauge(registry, "outbox.relay.parked.rows"))
                            .isOne();
                });
            }
            assertThat(topics()).as("the broker really does not create topics").doesNotContain(MISSING);
        } finally {
            // both tests share the class's database: rows left by a failure here would be retried, parked
            // and counted by the other test's relay
            dsl.deleteFrom(OUTBOX_MESSAGE)
                    .where(OUTBOX_MESSAGE.MESSAGE_ID.in(ids))
                    .execute();
        }
    }

    /**
     * G7 with G3, HOLD_KEY: while the row for the missing topic is being retried (attempts counted,
     * not yet parked), the other keys of its shard flow past it; the count survives a relay restart,
     * and a relay with {@code maxAttempts} just above the stored count parks the row after exactly the
     * remaining attempts. The key's later rows stay held, never sent, while new messages of its shard
     * keep flowing.
     */
    @Test
    void holdsTheKeyWhileOtherKeysOfTheShardFlow(TestDatabase db) throws Exception {
        DSLContext dsl = db.dsl();
        String key = "h-key";
        List<String> neighbours = Fixtures.sameShardKeys(key, 5);
        List<OutboxMessage> first = new ArrayList<>();
        first.add(message(MISSING, key, "lost"));
        first.add(message(PRESENT, key, "held-1"));
        first.add(message(PRESENT, key, "held-2"));
        List<UUID> badAndHeld = Fixtures.commit(dsl, first);
        UUID bad = badAndHeld.get(0);
        List<OutboxMessage> later = new ArrayList<>();
        for (String n : neighbours) {
            later.add(message(PRESENT, n, "neighbour"));
        }
        List<UUID> neighbourIds = Fixtures.commit(dsl, later);
        List<UUID> more = new ArrayList<>();

        try {
            int counted;
            try (Relay relay = relay(
                            db,
                            "missing-hold-1",
                            new SimpleMeterRegistry(),
                            ParkPolicy.HOLD_KEY,
                            Relay.Builder.MAX_MAX_ATTEMPTS);
                    Fixtures.Collector kafkaSide = new Fixtures.Collector(broker.bootstrapServers(), PRESENT)) {
                relay.start();
                await().atMost(Duration.ofSeconds(120)).untilAsserted(() -> {
                    assertThat(kafkaSide.ids()).containsAll(neighbourIds);
                    assertThat(dsl.select(OUTBOX_MESSAGE.ATTEMPTS)
                                    .from(OUTBOX_MESSAGE)
                                    .where(OUTBOX_MESSAGE.MESSAGE_ID.eq(bad))
                                    .fetchOne()
                                    .value1())
                            .isPositive();
                });
                assertThat(kafkaSide.ids()).doesNotContainAnyElementsOf(badAndHeld);
            }
            var retried = dsl.selectFrom(OUTBOX_MESSAGE)
                    .where(OUTBOX_MESSAGE.MESSAGE_ID.eq(bad))
                    .fetchSingle();
            assertThat(retried.getParkedAt()).as("not parked below maxAttempts").isNull();
            assertThat(retried.getLastError())
                    .as("the last error is visible before parking")
                    .contains(MISSING);
            counted = retried.getAttempts();

            SimpleMeterRegistry registry = new SimpleMeterRegistry();
            try (Relay relay = relay(db, "missing-hold-2", registry, ParkPolicy.HOLD_KEY, counted + 2);
                    Fixtures.Collector kafkaSide = new Fixtures.Collector(broker.bootstrapServers(), PRESENT)) {
                relay.start();
                await().atMost(Duration.ofSeconds(120))
                        .untilAsserted(() -> assertThat(Fixtures.counter(registry, "outbox.relay.parked"))
                                .isOne());
                var parked = dsl.selectFrom(OUTBOX_MESSAGE)
                        .where(OUTBOX_MESSAGE.MESSAGE_ID.eq(bad))
                        .fetchSingle();
                assertThat(parked.getParkedAt()).isNotNull();
                assertThat(parked.getAttempts()).isEqualTo(counted + 2);
                more.addAll(Fixtures.commit(dsl, List.of(message(PRESENT, neighbours.get(0), "after-park"))));
                await().atMost(Duration.ofSeconds(60))
                        .untilAsserted(() -> assertThat(kafkaSide.ids()).containsAll(more));
                assertThat(kafkaSide.ids()).doesNotContainAnyElementsOf(badAndHeld);
                var held = dsl.selectFrom(OUTBOX_MESSAGE)
                        .where(OUTBOX_MESSAGE.MESSAGE_KEY.eq(key))
                        .orderBy(OUTBOX_MESSAGE.ID)
                        .fetch();
                assertThat(held).hasSize(3);
                assertThat(held.subList(1, 3)).allSatisfy(r -> {
                    assertThat(r.getParkedAt()).as("held, not parked").isNull();
                    assertThat(r.getAttempts()).as("never sent").isZero();
                });
            }
        } finally {
            // see the other test: nothing of this one may be left for the next relay of this class
            List<UUID> all = new ArrayList<>(badAndHeld);
            all.addAll(neighbourIds);
            all.addAll(more);
            dsl.deleteFrom(OUTBOX_MESSAGE)
                    .where(OUTBOX_MESSAGE.MESSAGE_ID.in(all))
                    .execute();
        }
    }

    /**
     * G3 and G7 on an otherwise idle relay: only a missing topic's row and a later row of its key (for a
     * topic that exists) are in the outbox, so Kafka acknowledges nothing while the topic's lookups run,
     * and the relay's readiness probe (once a third of the 30 s lease without an acknowledgement) is
     * too rare to fall inside them. The topic must still be told apart from an outage: its rows stay
     * held, without retriable errors or a circuit breaker that opens, and the key's later row waits
     * for its held one. A message of another key is then published at once.
     */
    @Test
    void anIdleRelayKeepsHoldingAMissingTopicRatherThanTakingItForAnOutage(TestDatabase db) throws Exception {
        DSLContext dsl = db.dsl();
        List<UUID> ids = Fixtures.commit(
                dsl, List.of(message(MISSING, "idle-key", "first"), message(PRESENT, "idle-key", "second")));
        List<UUID> all = new ArrayList<>(ids);
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        try (Relay relay = Fixtures.relay(db, broker.bootstrapServers(), "missing-idle", registry)
                        .producerProperties(
                                Map.of("bootstrap.servers", broker.bootstrapServers(), "max.block.ms", 1_000))
                        .leaseDuration(Duration.ofSeconds(30))
                        .maxAttempts(Relay.Builder.MAX_MAX_ATTEMPTS)
                        .build();
                Fixtures.Collector kafkaSide = new Fixtures.Collector(broker.bootstrapServers(), PRESENT)) {
            relay.start();
            await().atMost(Duration.ofSeconds(10))
                    .until(() -> Fixtures.gauge(registry, "outbox.relay.held.topics") == 1.0);
            // eight one-second lookups, none with a record acknowledged meanwhile
            await().during(Duration.ofSeconds(8)).atMost(Duration.ofSeconds(12)).untilAsserted(() -> {
                assertThat(Fixtures.gauge(registry, "outbox.relay.held.topics"))
                        .as("the topic stays held")
                        .isEqualTo(1.0);
                assertThat(Fixtures.counter(registry, "outbox.relay.errors", "kind", "retriable"))
                        .as("held rows are not failed as if Kafka were down")
                        .isZero();
                assertThat(Fixtures.gauge(registry, "outbox.relay.breaker.state"))
                        .as("the circuit breaker stays closed")
                        .isZero();
                assertThat(kafkaSide.ids())
                        .as("the key's later row waits for its held one (G3)")
                        .doesNotContain(ids.get(1));
            });
            UUID other = Fixtures.commit(dsl, List.of(message(PRESENT, "other-key", "now")))
                    .get(0);
            all.add(other);
            await().atMost(Duration.ofSeconds(5))
                    .untilAsserted(() -> assertThat(kafkaSide.ids()).contains(other));
            assertThat(kafkaSide.ids()).doesNotContain(ids.get(1));
        } finally {
            dsl.deleteFrom(OUTBOX_MESSAGE)
                    .where(OUTBOX_MESSAGE.MESSAGE_ID.in(all))
                    .execute();
        }
    }

    /**
     * G7 and G3 past what a shard remembers: a shard remembers at most {@code HELD_WINDOW_BATCHES}
     * batches of held rows (50 rows with batches of 5). Behind 150 rows of a missing topic in one shard,
     * 40 rows of other keys for a topic that exists are published, each once, while all 150 are still
     * held, none parked ({@code maxAttempts} far away): past the rows it remembers, the shard leaves out
     * the held topic's rows and every later row of their keys. A key's row for the topic that exists,
     * committed there before that key's first held row, is published too: only what comes after a held
     * row waits for it. The rows of held keys for that same topic, behind their held rows, are not
     * published (G3). The gauge {@code outbox.relay.held.overflow.shards} reports the shard meanwhile.
     */
    @Test
    void rowsOfOtherKeysBehindMoreHeldRowsThanTheShardRemembersArePublishedOnce(TestDatabase db) throws Exception {
        DSLContext dsl = db.dsl();
        List<String> keys = Fixtures.sameShardKeys("past-held", 191);
        List<UUID> all = commitMissing(dsl, keys.subList(0, 150));
        // far past what the shard remembers: a key's row for the existing topic, then its row for the missing
        // one, then the later rows of two held keys, then 40 rows of other keys (8 full batches)
        String lateKey = keys.get(190);
        UUID beforeHeld = Fixtures.commit(dsl, List.of(message(PRESENT, lateKey, "before its held row")))
                .get(0);
        all.add(beforeHeld);
        all.addAll(commitMissing(dsl, List.of(lateKey)));
        List<UUID> heldKeyRows = Fixtures.commit(
                dsl, List.of(message(PRESENT, keys.get(149), "behind its key"), message(PRESENT, lateKey, "behind")));
        all.addAll(heldKeyRows);
        List<OutboxMessage> others = new ArrayList<>();
        for (String key : keys.subList(150, 190)) {
            others.add(message(PRESENT, key, "behind"));
        }
        List<UUID> behind = Fixtures.commit(dsl, others);
        all.addAll(behind);
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        try (Relay relay = inBatchesOfFive(db, "missing-past-held", registry, Relay.Builder.MAX_MAX_ATTEMPTS);
                Fixtures.Collector kafkaSide = new Fixtures.Collector(broker.bootstrapServers(), PRESENT)) {
            relay.start();
            await().atMost(Duration.ofSeconds(60))
                    .pollInterval(Duration.ofMillis(5))
                    .untilAsserted(() -> {
                        assertThat(kafkaSide.ids()).containsAll(behind).contains(beforeHeld);
                        assertThat(Fixtures.gauge(registry, "outbox.relay.held.overflow.shards"))
                                .isEqualTo(1.0);
                    });
            assertThat(dsl.fetchCount(
                            OUTBOX_MESSAGE, OUTBOX_MESSAGE.TOPIC.eq(MISSING).and(OUTBOX_MESSAGE.PARKED_AT.isNull())))
                    .as("every row of the missing topic still held, none parked")
                    .isEqualTo(151);
            // a few more rounds past the held rows: the held keys' rows stay behind their held rows
            Thread.sleep(3_000);
            assertThat(kafkaSide.ids())
                    .as("G3: not before their keys' held rows")
                    .doesNotContainAnyElementsOf(heldKeyRows);
            assertThat(dsl.fetchCount(OUTBOX_MESSAGE, OUTBOX_MESSAGE.MESSAGE_ID.in(heldKeyRows)))
                    .isEqualTo(2);
            List<UUID> published = new ArrayList<>(behind);
            published.add(beforeHeld);
            assertThat(kafkaSide.records().stream()
                            .filter(r -> published.contains(r.messageId()))
                            .count())
                    .as("each published once: a batch in flight is not read again")
                    .isEqualTo(published.size());
        } finally {
            dsl.deleteFrom(OUTBOX_MESSAGE)
                    .where(OUTBOX_MESSAGE.MESSAGE_ID.in(all))
                    .execute();
        }
    }

    /**
     * The held rows of a shard past what it remembers are still parked at {@code maxAttempts} (1 here:
     * at their first counted check, one a second with the test's backoff cap), a window at a time, and
     * the gauge {@code outbox.relay.held.overflow.shards} is back to 0 once the shard holds no more than
     * it remembers. The row of another key behind them is published.
     */
    @Test
    void heldRowsPastWhatTheShardRemembersAreParkedAtMaxAttempts(TestDatabase db) throws Exception {
        DSLContext dsl = db.dsl();
        List<String> keys = Fixtures.sameShardKeys("overflow", 151);
        List<UUID> all = commitMissing(dsl, keys.subList(0, 150));
        UUID behind = Fixtures.commit(dsl, List.of(message(PRESENT, keys.get(150), "behind")))
                .get(0);
        all.add(behind);
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        try (Relay relay = inBatchesOfFive(db, "missing-overflow", registry, 1);
                Fixtures.Collector kafkaSide = new Fixtures.Collector(broker.bootstrapServers(), PRESENT)) {
            relay.start();
            await().atMost(Duration.ofSeconds(30))
                    .pollInterval(Duration.ofMillis(5))
                    .until(() -> Fixtures.gauge(registry, "outbox.relay.held.overflow.shards") == 1.0);
            await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> {
                assertThat(kafkaSide.ids()).contains(behind);
                assertThat(dsl.fetchCount(OUTBOX_MESSAGE, OUTBOX_MESSAGE.PARKED_AT.isNotNull()))
                        .isEqualTo(150);
                assertThat(Fixtures.gauge(registry, "outbox.relay.held.overflow.shards"))
                        .isZero();
            });
        } finally {
            dsl.deleteFrom(OUTBOX_MESSAGE)
                    .where(OUTBOX_MESSAGE.MESSAGE_ID.in(all))
                    .execute();
        }
    }

    /** A relay in batches of 5, so that a shard remembers 50 held rows ({@code HELD_WINDOW_BATCHES} batches). */
    private Relay inBatchesOfFive(TestDatabase db, String id, SimpleMeterRegistry registry, int maxAttempts) {
        return Fixtures.relay(db, broker.bootstrapServers(), id, registry)
                .producerProperties(Map.of("bootstrap.servers", broker.bootstrapServers(), "max.block.ms", 1_000))
                .batchSize(5)
                .maxAttempts(maxAttempts)
                .build();
    }

    /** @return the ids of one committed row of the missing topic per key, in key order (mutable) */
    private static List<UUID> commitMissing(DSLContext dsl, List<String> keys) {
        List<OutboxMessage> missing = new ArrayList<>();
        for (String key : keys) {
            missing.add(message(MISSING, key, "held"));
        }
        return new ArrayList<>(Fixtures.commit(dsl, missing));
    }

    private Relay relay(TestDatabase db, String id, SimpleMeterRegistry registry, ParkPolicy policy, int maxAttempts) {
        return Fixtures.relay(db, broker.bootstrapServers(), id, registry)
                .producerProperties(Map.of("bootstrap.servers", broker.bootstrapServers(), "max.block.ms", 2_000))
                .parkPolicy(policy)
                .maxAttempts(maxAttempts)
                .build();
    }

    private Set<String> topics() throws Exception {
        try (Admin admin = broker.admin()) {
            return admin.listTopics().names().get(30, TimeUnit.SECONDS);
        }
    }
}
