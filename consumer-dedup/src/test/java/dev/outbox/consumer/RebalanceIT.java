package dev.outbox.consumer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.core.MessageIds;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

@ExtendWith(RealServices.class)
@Timeout(300)
class RebalanceIT {
    private static final Duration WAIT = Duration.ofSeconds(120);

    /**
     * G4 across rebalances: a second consumer joins the group mid-stream (the first one revokes and
     * commits), then leaves with close() (its partitions move back). Every message id is handled,
     * each exactly once, and both consumers did part of the work.
     */
    @Test
    void joinAndLeaveMidStreamKeepOneEffectPerMessageId(TestDatabase db, TestKafka kafka) throws Exception {
        Fixtures.createPayments(db);
        String topic = TestKafka.uniqueTopic("rebalance");
        kafka.createTopic(topic, 6);
        List<UUID> ids = new ArrayList<>();
        for (int i = 0; i < 6000; i++) {
            ids.add(MessageIds.next());
        }
        String name = "rebalance";
        MeterRegistry registryA = new SimpleMeterRegistry();
        MeterRegistry registryB = new SimpleMeterRegistry();
        CompletableFuture<Integer> published;
        // the stream pauses half-way until b has partitions: otherwise a fast a could drain the whole
        // stream before b's join completes, and b would have nothing left to handle
        CompletableFuture<Void> bAssigned = new CompletableFuture<>();
        try (IdempotentConsumer a = Fixtures.builder(kafka, db, topic, name)
                .meterRegistry(registryA)
                .concurrency(3)
                .maxRecordsPerTransaction(10)
                .build()) {
            a.start();
            published = Fixtures.publishWithDuplicates(
                    kafka, topic, ids, 0.2, 200, Duration.ofMillis(100), ids.size() / 2, bAssigned);
            try {
                await().atMost(WAIT).untilAsserted(() -> assertThat(rows(db)).isGreaterThanOrEqualTo(500));
                try (IdempotentConsumer b = Fixtures.builder(kafka, db, topic, name)
                        .meterRegistry(registryB)
                        .concurrency(3)
                        .maxRecordsPerTransaction(10)
                        .build()) {
                    b.start();
                    // b registers a lag gauge per partition when the rebalance assigns it some
                    await().atMost(WAIT)
                            .untilAsserted(() -> assertThat(registryB
                                            .find("outbox.consumer.lag")
                                            .gauges())
                                    .isNotEmpty());
                    bAssigned.complete(null);
                    await().atMost(WAIT)
                            .untilAsserted(() -> assertThat(registryB
                                            .get("outbox.consumer.handled")
                                            .counter()
                                            .count())
                                    .isGreaterThanOrEqualTo(300));
                } // b leaves: its partitions go back to a
            } finally {
                bAssigned.complete(null);
            }
            assertThat(published.get(WAIT.toSeconds(), TimeUnit.SECONDS)).isGreaterThan(ids.size());
            await().atMost(WAIT).untilAsserted(() -> assertThat(rows(db)).isGreaterThanOrEqualTo(ids.size()));
            await().atMost(WAIT).untilAsserted(() -> Fixtures.assertCommittedToEnd(kafka, name + "-group", topic));
        }
        Map<UUID, Long> perId = new HashMap<>(Fixtures.paymentsPerId(db));
        assertThat(perId).hasSize(ids.size()).containsOnlyKeys(ids);
        assertThat(perId.values()).allSatisfy(n -> assertThat(n).isOne());
        double handled = registryA.get("outbox.consumer.handled").counter().count()
                + registryB.get("outbox.consumer.handled").counter().count();
        assertThat(handled).isEqualTo(ids.size());
        assertThat(registryA.get("outbox.consumer.handled").counter().count()).isPositive();
    }

    private static long rows(TestDatabase db) throws Exception {
        return Fixtures.scalar(db, "select count(*) from payments");
    }
}
