package dev.outbox.relay;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.migrations.jooq.Tables;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import java.time.Duration;
import java.util.HashSet;
import java.util.Set;
import java.util.stream.IntStream;
import org.jooq.impl.DSL;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

@ExtendWith(RealServices.class)
class FairShareIT {

    /**
     * Leases converge to a fair share: with two relays and 64 shards each owns 32, disjoint, agreeing
     * with the lease table; when one closes it hands its shards back and the other takes all 64
     * (G1: no shard is left without a publisher).
     */
    @Test
    void twoRelaysSplitTheShardsAndTheSurvivorTakesAll(TestDatabase db, TestKafka kafka) {
        Set<Integer> all = new HashSet<>(IntStream.range(0, 64).boxed().toList());
        // start() waits at most one lease duration for its first claim; the fixtures' 3 s can run out on a
        // loaded machine (new pool, first queries), which would fail the first assertion without any
        // fault in the relay. 15 s leaves room and still renews, hands back and claims every 5 s.
        try (Relay first = Fixtures.relay(db, kafka, "fair-1")
                .leaseDuration(Duration.ofSeconds(15))
                .build()) {
            first.start();
            assertThat(first.ownedShards())
                    .as("start() claims before it returns")
                    .hasSize(64);
            try (Relay second = Fixtures.relay(db, kafka, "fair-2").build()) {
                second.start();
                await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> {
                    assertThat(first.ownedShards()).hasSize(32);
                    assertThat(second.ownedShards()).hasSize(32);
                });
                Set<Integer> union = new HashSet<>(first.ownedShards());
                union.addAll(second.ownedShards());
                assertThat(union).isEqualTo(all);
                await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> {
                    assertThat(owners(db, "fair-1")).isEqualTo(first.ownedShards());
                    assertThat(owners(db, "fair-2")).isEqualTo(second.ownedShards());
                });
            }
            // second closed: its shards were handed back, not left to expire
            assertThat(owners(db, "fair-2")).isEmpty();
            await().atMost(Duration.ofSeconds(60))
                    .untilAsserted(() -> assertThat(first.ownedShards()).isEqualTo(all));
            assertThat(owners(db, "fair-1")).isEqualTo(all);
        }
        assertThat(db.dsl().fetchCount(Tables.OUTBOX_RELAY_MEMBER)).isZero();
    }

    private static Set<Integer> owners(TestDatabase db, String owner) {
        var l = Tables.OUTBOX_SHARD_LEASE;
        return new HashSet<>(db.dsl()
                .select(l.SHARD)
                .from(l)
                .where(l.OWNER.eq(owner))
                .and(l.LEASE_UNTIL.gt(DSL.currentOffsetDateTime()))
                .fetch(l.SHARD));
    }
}
