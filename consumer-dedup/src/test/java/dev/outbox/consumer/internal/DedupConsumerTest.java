package dev.outbox.consumer.internal;

import static dev.outbox.consumer.internal.Fakes.TP;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.core.internal.TimeSource;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.MockConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;

/**
 * The poll thread with Kafka's {@link MockConsumer} and an in-memory database: what a rebalance
 * does to the work in flight (G4: an offset is committed only after its transaction committed).
 */
class DedupConsumerTest {

    @Test
    void aRevocationWaitsForTheTransactionInFlightCommitsItsOffsetsAndLeavesTheRestForTheNextOwner() throws Exception {
        MockConsumer<byte[], byte[]> kafka = new MockConsumer<>("earliest");
        Fakes.Store store = new Fakes.Store();
        CountDownLatch inFlight = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        store.handler = r -> {
            if (r.offset() == 0) {
                inFlight.countDown();
                try {
                    release.await(10, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            return null;
        };
        List<Map<TopicPartition, OffsetAndMetadata>> commits = new CopyOnWriteArrayList<>();
        Hooks hooks = new Hooks() {
            @Override
            public void beforeOffsetCommit(Map<TopicPartition, OffsetAndMetadata> offsets) {
                commits.add(Map.copyOf(offsets));
            }
        };
        Settings settings = Fakes.settings(3, 2, Duration.ofHours(1), hooks, null);
        try (DedupConsumer consumer = new DedupConsumer(settings, kafka, store, new Fakes.Sink(), TimeSource.SYSTEM)) {
            kafka.schedulePollTask(() -> {
                kafka.updateBeginningOffsets(Map.of(TP, 0L));
                kafka.rebalance(List.of(TP));
                Fakes.records(0, 6).forEach(kafka::addRecord);
            });
            consumer.start();
            assertThat(inFlight.await(10, TimeUnit.SECONDS)).isTrue();
            Thread poll = Thread.getAllStackTraces().keySet().stream()
                    .filter(t -> t.getName().endsWith("-poll") && t.getName().contains(settings.consumerName() + "#"))
                    .findFirst()
                    .orElseThrow();

            kafka.schedulePollTask(() -> kafka.rebalance(List.of()));
            // the poll thread waits in the revocation for the transaction in flight
            await().atMost(Duration.ofSeconds(10)).until(() -> poll.getState() == Thread.State.TIMED_WAITING);
            release.countDown();

            // (MockConsumer reports offset 0 as committed for a partition it no longer assigns: the hook sees the
            // commit)
            await().atMost(Duration.ofSeconds(10))
                    .untilAsserted(() -> assertThat(commits).containsExactly(Map.of(TP, new OffsetAndMetadata(2))));
            assertThat(store.transactions).containsExactly(List.of(0L, 1L));
            assertThat(consumer.readiness().partitions()).isZero();
        }
    }

    /**
     * A database breaker left open with no work to call it (its partitions' work moved to another
     * member): the idle consumer has the database checked through it once its open interval has
     * passed, twice in vain here, and it closes once the database answers, so that readiness and the
     * breaker gauge follow the database. Before, it stayed open, and readiness false, until a record
     * arrived: hours on a quiet topic.
     */
    @Test
    void anOpenDatabaseBreakerNoWorkCallsClosesOnceTheDatabaseAnswers() throws Exception {
        MockConsumer<byte[], byte[]> kafka = new MockConsumer<>("earliest");
        Fakes.Store store = new Fakes.Store();
        store.pingFailures = 2;
        Fakes.Time time = new Fakes.Time();
        Settings settings = Fakes.settings(3, 2, Duration.ofHours(1), Hooks.NONE, null);
        try (DedupConsumer consumer = new DedupConsumer(settings, kafka, store, new Fakes.Sink(), time)) {
            kafka.schedulePollTask(() -> {
                kafka.updateBeginningOffsets(Map.of(TP, 0L));
                kafka.rebalance(List.of(TP));
            });
            consumer.start();
            await().atMost(Duration.ofSeconds(10))
                    .until(() -> consumer.readiness().partitions() == 1);
            consumer.databaseCircuitBreaker().transitionToOpenState();
            assertThat(consumer.readiness().databaseBreakerClosed()).isFalse();

            Thread.sleep(1_500); // polls, on a clock that has not moved: the open interval has not passed
            assertThat(store.pings).as("checks let through while open").hasValue(0);
            for (int check = 1; check <= 3; check++) {
                time.advance(Duration.ofSeconds(6)); // past the open interval and the consumer's idle pace
                int expected = check;
                await().atMost(Duration.ofSeconds(10)).until(() -> store.pings.get() == expected);
            }
            await().atMost(Duration.ofSeconds(10))
                    .untilAsserted(() -> assertThat(consumer.readiness().databaseBreakerClosed())
                            .isTrue());
            assertThat(consumer.databaseCircuitBreaker().getState()).isEqualTo(CircuitBreaker.State.CLOSED);
        }
    }

    /**
     * The same for the dead-letter breaker, left open after the partition whose record it could not
     * dead-letter moved to another member: the idle consumer asks the brokers for the dead-letter
     * topic's partitions through it, twice in vain here, and it closes once they answer. Before,
     * readiness stayed false until another record failed for good on this member.
     */
    @Test
    void anOpenDeadLetterBreakerNoWorkCallsClosesOnceTheBrokersAnswer() throws Exception {
        MockConsumer<byte[], byte[]> kafka = new MockConsumer<>("earliest");
        Fakes.Sink sink = new Fakes.Sink();
        sink.pingFailures = 2;
        Fakes.Time time = new Fakes.Time();
        Settings settings = Fakes.settings(3, 2, Duration.ofHours(1), Hooks.NONE, null);
        try (DedupConsumer consumer = new DedupConsumer(settings, kafka, new Fakes.Store(), sink, time)) {
            kafka.schedulePollTask(() -> {
                kafka.updateBeginningOffsets(Map.of(TP, 0L));
                kafka.rebalance(List.of(TP));
            });
            consumer.start();
            await().atMost(Duration.ofSeconds(10))
                    .until(() -> consumer.readiness().partitions() == 1);
            consumer.deadLetterCircuitBreaker().transitionToOpenState();
            assertThat(consumer.readiness().deadLetterBreakerClosed()).isFalse();

            Thread.sleep(1_500); // polls, on a clock that has not moved: the open interval has not passed
            assertThat(sink.pings).as("checks let through while open").isEmpty();
            for (int check = 1; check <= 3; check++) {
                time.advance(Duration.ofSeconds(6)); // past the open interval and the consumer's idle pace
                int expected = check;
                await().atMost(Duration.ofSeconds(10)).until(() -> sink.pings.size() == expected);
            }
            await().atMost(Duration.ofSeconds(10))
                    .untilAsserted(() -> assertThat(consumer.readiness().deadLetterBreakerClosed())
                            .isTrue());
            assertThat(consumer.deadLetterCircuitBreaker().getState()).isEqualTo(CircuitBreaker.State.CLOSED);
            assertThat(sink.pings).containsOnly(TP.topic() + ".dlt");
        }
    }
}
