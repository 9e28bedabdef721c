package dev.outbox.relay;

import static dev.outbox.migrations.jooq.Tables.OUTBOX_MESSAGE;
import static dev.outbox.relay.Fixtures.message;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.core.OutboxMessage;
import dev.outbox.core.Shards;
import dev.outbox.migrations.jooq.Tables;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.time.OffsetDateTime;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import org.jooq.DSLContext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

@ExtendWith(RealServices.class)
class FencingIT {

    /**
     * Fencing (G1, G3, G7 across failover): once another owner took a shard over (epoch bumped in the
     * lease table, as a takeover after this relay paused past its lease would), the relay can neither
     * delete nor park that shard's rows, counts errors{kind=fenced} and drops the shard, while its
     * other shards keep publishing. The lease is long (90 s) so that the write, not a renewal, is what
     * discovers the takeover.
     */
    @Test
    void aRelayThatLostItsLeaseCannotDeleteOrParkAndDropsTheShard(TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("fencing");
        kafka.createTopic(topic, 4);
        DSLContext dsl = db.dsl();
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        String deleteKey = "fenced-delete";
        String parkKey = keyOnAnotherShard(deleteKey);
        String freeKey = keyOnAnotherShard(deleteKey, parkKey);
        int deleteShard = Shards.of(deleteKey, null, 64);
        int parkShard = Shards.of(parkKey, null, 64);
        try (Relay relay = Fixtures.relay(db, kafka.bootstrapServers(), "fenced-relay", registry)
                        .producerProperties(
                                Map.of("bootstrap.servers", kafka.bootstrapServers(), "max.request.size", 10_240))
                        .leaseDuration(Duration.ofSeconds(90))
                        .build();
                Fixtures.Collector kafkaSide = new Fixtures.Collector(kafka.bootstrapServers(), topic)) {
            relay.start();
            assertThat(relay.ownedShards()).contains(deleteShard, parkShard);

            takeOver(dsl, deleteShard);
            takeOver(dsl, parkShard);
            List<UUID> toDelete =
                    Fixtures.commit(dsl, List.of(message(topic, deleteKey, "a"), message(topic, deleteKey, "b")));
            UUID poison = Fixtures.commit(
                            dsl, List.of(OutboxMessage.of(topic, parkKey, "Big", "text/plain", new byte[20_000])))
                    .get(0);
            UUID free =
                    Fixtures.commit(dsl, List.of(message(topic, freeKey, "c"))).get(0);

            await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> {
                assertThat(relay.ownedShards())
                        .doesNotContain(deleteShard, parkShard)
                        .hasSize(62);
                assertThat(Fixtures.counter(registry, "outbox.relay.errors", "kind", "fenced"))
                        .isGreaterThanOrEqualTo(2);
                assertThat(kafkaSide.ids()).contains(free);
            });
            // the fenced delete removed nothing: the new owner will publish these rows
            assertThat(dsl.select(OUTBOX_MESSAGE.MESSAGE_ID)
                            .from(OUTBOX_MESSAGE)
                            .where(OUTBOX_MESSAGE.SHARD.eq(deleteShard))
                            .fetch(OUTBOX_MESSAGE.MESSAGE_ID))
                    .containsExactlyInAnyOrderElementsOf(toDelete);
            // the fenced park changed nothing
            var row = dsl.selectFrom(OUTBOX_MESSAGE)
                    .where(OUTBOX_MESSAGE.MESSAGE_ID.eq(poison))
                    .fetchSingle();
            assertThat(row.getParkedAt()).isNull();
            assertThat(row.getLastError()).isNull();
            assertThat(row.getAttempts()).isZero();
            assertThat(Fixtures.counter(registry, "outbox.relay.parked")).isZero();
            // the unfenced shard was published and deleted as usual
            await().atMost(Duration.ofSeconds(30))
                    .untilAsserted(() -> assertThat(dsl.fetchCount(OUTBOX_MESSAGE, OUTBOX_MESSAGE.MESSAGE_ID.eq(free)))
                            .isZero());
            assertThat(Fixtures.gauge(registry, "outbox.relay.owned.shards")).isEqualTo(62);
        }
    }

    /**
     * A lease that only expired (owner and epoch still this relay's, as after a pause longer than the
     * lease that no other relay used): the shard's delete is fenced and the shard dropped, and the relay
     * hands the lease back and claims it again under a new epoch at once, so the rows are published and
     * deleted within seconds. Before, the shard stayed idle until the next lease round, a third of the
     * lease later (30 s here), and a round that had renewed the expired lease just before the drop kept
     * it from every relay for a whole lease.
     */
    @Test
    void aShardDroppedForAnExpiredLeaseIsClaimedAgainAtOnce(TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("expired-lease");
        kafka.createTopic(topic, 4);
        DSLContext dsl = db.dsl();
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        String key = "expired-lease-key";
        int shard = Shards.of(key, null, 64);
        var l = Tables.OUTBOX_SHARD_LEASE;
        try (Relay relay = Fixtures.relay(db, kafka.bootstrapServers(), "expiring-relay", registry)
                        .leaseDuration(Duration.ofSeconds(90))
                        .build();
                Fixtures.Collector kafkaSide = new Fixtures.Collector(kafka.bootstrapServers(), topic)) {
            relay.start();
            assertThat(relay.ownedShards()).contains(shard);
            long epoch = dsl.select(l.EPOCH).from(l).where(l.SHARD.eq(shard)).fetchSingle(l.EPOCH);
            assertThat(dsl.update(l)
                            .set(l.LEASE_UNTIL, OffsetDateTime.now().minusSeconds(1))
                            .where(l.SHARD.eq(shard))
                            .execute())
                    .isOne();
            UUID id = Fixtures.commit(dsl, List.of(message(topic, key, "after-expiry")))
                    .get(0);

            // well before the next lease round, 30 s after the start
            await().atMost(Duration.ofSeconds(15)).untilAsserted(() -> {
                assertThat(Fixtures.counter(registry, "outbox.relay.errors", "kind", "fenced"))
                        .isGreaterThanOrEqualTo(1);
                assertThat(dsl.fetchCount(OUTBOX_MESSAGE, OUTBOX_MESSAGE.MESSAGE_ID.eq(id)))
                        .as("published and deleted under the new epoch")
                        .isZero();
            });
            var lease = dsl.selectFrom(l).where(l.SHARD.eq(shard)).fetchSingle();
            assertThat(lease.getOwner()).isEqualTo("expiring-relay");
            assertThat(lease.getEpoch()).isGreaterThan(epoch);
            assertThat(relay.ownedShards()).contains(shard).hasSize(64);
            await().atMost(Duration.ofSeconds(15))
                    .untilAsserted(() -> assertThat(kafkaSide.ids()).contains(id));
        }
    }

    /** What another relay's claim does to the lease row: new owner, epoch + 1, lease in the future. */
    private static void takeOver(DSLContext dsl, int shard) {
        var l = Tables.OUTBOX_SHARD_LEASE;
        int updated = dsl.update(l)
                .set(l.OWNER, "intruder")
                .set(l.EPOCH, l.EPOCH.plus(1))
                .set(l.LEASE_UNTIL, OffsetDateTime.now().plusHours(1))
                .where(l.SHARD.eq(shard))
                .execute();
        assertThat(updated).isOne();
    }

    private static String keyOnAnotherShard(String... taken) {
        Set<Integer> used = new HashSet<>();
        for (String k : taken) {
            used.add(Shards.of(k, null, 64));
        }
        for (int i = 0; ; i++) {
            String k = "key-" + i;
            if (!used.contains(Shards.of(k, null, 64))) {
                return k;
            }
        }
    }
}
