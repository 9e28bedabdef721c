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
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.jooq.DSLContext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Review item m3, for G3 across a shutdown: when batches are still in flight after {@code
 * shutdownTimeout}, {@code close()} closes the producer before it hands back any lease, and the shards
 * of those batches are not handed back at all, so nothing the closed relay buffered can reach Kafka
 * after another relay may have claimed them; their rows are published by the next owner (G1).
 */
@ExtendWith(RealServices.class)
class ShutdownTimeoutIT {

    @Test
    @Timeout(value = 4, unit = TimeUnit.MINUTES)
    void unfinishedShardsKeepTheirLeaseAndTheClosedProducerSendsNothingLater(TestDatabase db) throws Exception {
        String topic = "shutdown";
        try (TestKafka broker = TestKafka.startInJvm()) {
            broker.createTopic(topic, 2);
            DSLContext dsl = db.dsl();
            Relay first = Fixtures.outageRelay(
                            db, broker.bootstrapServers(), "closing-relay", new SimpleMeterRegistry(), Map.of())
                    .shutdownTimeout(Duration.ofMillis(500))
                    .build();
            first.start();
            Fixtures.commit(dsl, List.of(Fixtures.message(topic, "warm-up", "0")));
            await().atMost(Duration.ofSeconds(60)).until(() -> dsl.fetchCount(OUTBOX_MESSAGE) == 0);

            broker.stopBroker();
            List<OutboxMessage> stuck = new ArrayList<>();
            for (int i = 0; i < 20; i++) {
                stuck.add(Fixtures.message(topic, "stuck", Integer.toString(i)));
            }
            List<UUID> ids = Fixtures.commit(dsl, stuck);
            int shard = Shards.of("stuck", null, 64);
            Thread.sleep(1_000); // the shard has read the rows and handed them to the producer
            long closing = System.nanoTime();
            first.close();
            long closeMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - closing);

            assertThat(owner(dsl, shard))
                    .as("the shard whose batch did not finish is not handed back")
                    .isEqualTo("closing-relay");
            assertThat(((Number) dsl.fetchValue(
                                    "select count(*) from outbox.outbox_shard_lease where owner is not null"))
                            .longValue())
                    .as("every other shard is handed back")
                    .isEqualTo(1L);

            broker.startBroker();
            try (Fixtures.Collector collector = new Fixtures.Collector(broker.bootstrapServers(), topic)) {
                // the closed producer's buffered records were dropped, not flushed on the way out
                Thread.sleep(5_000);
                assertThat(collector.ids())
                        .as("nothing of the closed relay arrives after its close")
                        .doesNotContainAnyElementsOf(ids);
                try (Relay next = Fixtures.outageRelay(
                                db, broker.bootstrapServers(), "next-relay", new SimpleMeterRegistry(), Map.of())
                        .build()) {
                    next.start();
                    await().atMost(Duration.ofSeconds(60))
                            .untilAsserted(() -> assertThat(collector.ids()).containsAll(ids));
                }
            }
            System.out.printf("[shutdown] close() with batches in flight took %d ms%n", closeMillis);
        }
    }

    private static String owner(DSLContext dsl, int shard) {
        return (String) dsl.fetchValue("select owner from outbox.outbox_shard_lease where shard = ?", shard);
    }
}
