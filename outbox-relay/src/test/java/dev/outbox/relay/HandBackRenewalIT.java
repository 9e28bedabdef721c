package dev.outbox.relay;

import static dev.outbox.migrations.jooq.Tables.OUTBOX_MESSAGE;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.core.OutboxMessage;
import dev.outbox.core.Shards;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.jooq.DSLContext;
import org.jooq.Record3;
import org.jooq.impl.DSL;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Review item m2, for G3 across a hand-back: when a second relay joins and the first hands back its
 * surplus shards, a shard whose batch is still in flight stays leased to the first relay and renewed
 * (its {@code lease_until} keeps moving and never lapses) until that batch has finished, and only then
 * is released; so no other relay can claim it while records of the batch may still reach Kafka.
 *
 * <p>Slow batch: the broker is stopped and the producer's {@code buffer.memory} holds one record of
 * the batch at a time, so each {@code send()} waits until the previous record expired
 * ({@code delivery.timeout.ms}, 3 s): a batch of 11 records stays in flight for about 33 s, well over
 * the 9 s lease.
 */
@ExtendWith(RealServices.class)
class HandBackRenewalIT {
    private static final Duration LEASE = Duration.ofSeconds(9);

    @Test
    @Timeout(value = 4, unit = TimeUnit.MINUTES)
    void aShardHandedBackMidBatchStaysRenewedUntilTheBatchFinished(TestDatabase db) throws Exception {
        String topic = "hand-back";
        // the first relay hands back its highest shards (32-63 of 64 with two relays)
        String first = "slow-0";
        for (int i = 1; Shards.of(first, null, 64) < 32; i++) {
            first = "slow-" + i;
        }
        int shard = Shards.of(first, null, 64);
        List<String> keys = new ArrayList<>(List.of(first));
        keys.addAll(Fixtures.sameShardKeys(first, 10));
        try (TestKafka broker = TestKafka.startInJvm()) {
            broker.createTopic(topic, 2);
            DSLContext dsl = db.dsl();
            SimpleMeterRegistry firstMetrics = new SimpleMeterRegistry();
            try (Relay slow = Fixtures.outageRelay(
                            db,
                            broker.bootstrapServers(),
                            "first",
                            firstMetrics,
                            // keeps the topic's metadata while the broker is down, so a send() waits only for memory
                            Map.of(
                                    "buffer.memory",
                                    1_000_000,
                                    "max.block.ms",
                                    8_000,
                                    "metadata.recovery.strategy",
                                    "none"))
                    .build()) {
                slow.start();
                Fixtures.commit(dsl, List.of(Fixtures.message(topic, "warm-up", "0")));
                await().atMost(Duration.ofSeconds(60)).until(() -> dsl.fetchCount(OUTBOX_MESSAGE) == 0);
                assertThat(slow.ownedShards()).hasSize(64);

                broker.stopBroker();
                String payload = "x".repeat(600_000); // two do not fit in buffer.memory
                List<OutboxMessage> big = new ArrayList<>();
                for (String key : keys) { // one record per key: a failed record does not hold back the others
                    big.add(Fixtures.message(topic, key, payload));
                }
                Fixtures.commit(dsl, big);
                Thread.sleep(1_500); // the shard has read the rows and is handing them to the producer

                try (Relay second = Fixtures.outageRelay(
                                db, broker.bootstrapServers(), "second", new SimpleMeterRegistry(), Map.of())
                        .build()) {
                    second.start();
                    OffsetDateTime handBackLeaseUntil = null;
                    OffsetDateTime latest = null;
                    long handBackNanos = 0;
                    int renewals = 0;
                    while (true) {
                        Record3<String, OffsetDateTime, Boolean> lease = lease(dsl, shard);
                        if (!"first".equals(lease.value1())) {
                            // read after the release was seen: the batch must have finished before it
                            assertThat(Fixtures.counter(firstMetrics, "outbox.relay.errors", "kind", "retriable"))
                                    .as("the shard was released only after its batch finished")
                                    .isGreaterThanOrEqualTo(1);
                            break;
                        }
                        assertThat(lease.value3())
                                .as("the lease of shard %d never lapses while its batch is in flight", shard)
                                .isTrue();
                        if (handBackLeaseUntil == null) {
                            if (otherHandedBack(dsl, shard)) {
                                handBackLeaseUntil = lease.value2();
                                latest = handBackLeaseUntil;
                                handBackNanos = System.nanoTime();
                            }
                        } else if (lease.value2().isAfter(latest)) {
                            latest = lease.value2();
                            renewals++;
                        }
                        Thread.sleep(100);
                    }
                    long heldMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - handBackNanos);
                    assertThat(handBackLeaseUntil)
                            .as("the other shards 32-63 were handed back while the batch was in flight")
                            .isNotNull();
                    assertThat(renewals)
                            .as("lease_until of the shard handed back moved on while its batch was in flight")
                            .isGreaterThanOrEqualTo(2);
                    assertThat(heldMillis)
                            .as("the batch outlasted the lease itself: without renewals it would have lapsed")
                            .isGreaterThan(LEASE.toMillis());
                    System.out.printf(
                            "[hand-back] shard %d kept %d ms after the hand-back began, %d renewals meanwhile%n",
                            shard, heldMillis, renewals);

                    // G1: the next owner publishes the rows once Kafka is back
                    broker.startBroker();
                    await().atMost(Duration.ofSeconds(90)).until(() -> dsl.fetchCount(OUTBOX_MESSAGE) == 0);
                }
            }
        }
    }

    private static Record3<String, OffsetDateTime, Boolean> lease(DSLContext dsl, int shard) {
        return dsl.resultQuery(
                        "select owner, lease_until, lease_until > now() from outbox.outbox_shard_lease where shard = ?",
                        shard)
                .coerce(
                        DSL.field("owner", String.class),
                        DSL.field("lease_until", OffsetDateTime.class),
                        DSL.field("live", Boolean.class))
                .fetchOne();
    }

    /** @return whether another shard of 32-63 has left the first relay */
    private static boolean otherHandedBack(DSLContext dsl, int shard) {
        return ((Number) dsl.fetchValue(
                                "select count(*) from outbox.outbox_shard_lease where shard >= 32 and shard <> ?"
                                        + " and owner is distinct from 'first'",
                                shard))
                        .longValue()
                > 0;
    }
}
