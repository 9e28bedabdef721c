package dev.outbox.consumer.internal;

import static dev.outbox.consumer.internal.Fakes.TP;
import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import dev.outbox.core.OutboxHeaders;
import dev.outbox.core.internal.PrefixedLog;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Set;
import java.util.UUID;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.MockConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.RebalanceInProgressException;
import org.apache.kafka.common.errors.TimeoutException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/**
 * The poll thread's offset commits, pauses and lag, with Kafka's {@link MockConsumer}, a fake clock and
 * a captured log.
 */
class AssignmentsTest {
    private final Fakes.Time time = new Fakes.Time();
    private final Fakes.Scheduler scheduler = new Fakes.Scheduler(time);
    private final Logger logger = (Logger) LoggerFactory.getLogger(AssignmentsTest.class.getName() + ".capture");
    private final ListAppender<ILoggingEvent> logged = new ListAppender<>();
    private final Settings settings = Fakes.settings(3, 10, Duration.ofHours(1), new Hooks() {}, null);
    private static final TopicPartition P0 = TP;
    private static final TopicPartition P1 = new TopicPartition(TP.topic(), 1);
    private static final TopicPartition P2 = new TopicPartition(TP.topic(), 2);

    /** A consumer whose offset commits are refused while {@link #refusing} is set, as during a rebalance. */
    private static final class RebalancingConsumer extends MockConsumer<byte[], byte[]> {
        boolean refusing;

        RebalancingConsumer() {
            super("earliest");
        }

        @Override
        public synchronized void commitSync(Map<TopicPartition, OffsetAndMetadata> offsets, Duration timeout) {
            if (refusing) {
                throw new RebalanceInProgressException("Offset commit cannot be completed since the consumer is"
                        + " undergoing a rebalance for auto partition assignment");
            }
            super.commitSync(offsets, timeout);
        }
    }

    /**
     * A consumer that fetches nothing: its view of a partition's end offset ({@link #currentLag}) stays
     * at {@link #fetchedEnd}, as a paused partition's does, while {@link #endOffsets} asks the broker
     * (the mock's end offsets), counted, failing while {@link #failing} is set.
     */
    private static final class HeldConsumer extends MockConsumer<byte[], byte[]> {
        long fetchedEnd;
        int endOffsetsCalls;
        boolean failing;

        HeldConsumer() {
            super("earliest");
        }

        @Override
        public synchronized OptionalLong currentLag(TopicPartition tp) {
            return OptionalLong.of(fetchedEnd - position(tp));
        }

        @Override
        public synchronized Map<TopicPartition, Long> endOffsets(
                Collection<TopicPartition> partitions, Duration timeout) {
            endOffsetsCalls++;
            if (failing) {
                throw new TimeoutException("Failed to get offsets by times in " + timeout.toMillis() + "ms");
            }
            return super.endOffsets(partitions, timeout);
        }
    }

    @AfterEach
    void detach() {
        logger.detachAppender(logged);
    }

    /**
     * A commit refused on every poll for as long as a rebalance lasts (with a cooperative assignor the
     * consumer keeps its partitions, goes on polling every 100 ms and commitSync fails at once) is
     * logged at WARN when it starts, then at most once per 10 s with how many were left out, and at
     * INFO when a commit succeeds again; a new refusal after that is logged at once. Fails when every
     * refused commit is logged (200 WARN lines in these 20 s).
     */
    @Test
    void aCommitRefusedOnEveryPollIsLoggedOncePerIntervalAndWhenItClears() {
        RebalancingConsumer kafka = new RebalancingConsumer();
        Assignments assignments = assignments(kafka);
        assignments.onPartitionsAssigned(List.of(TP));
        kafka.assign(List.of(TP));
        assignments.enqueue(records(0, 5));
        scheduler.runAll(100);

        kafka.refusing = true;
        for (int poll = 0; poll < 200; poll++) { // 20 s of polls, 100 ms apart
            time.advance(Duration.ofMillis(100));
            assignments.commit(false);
        }
        assertThat(warnings())
                .hasSize(2)
                .allSatisfy(line -> assertThat(line).contains("offset commit refused during a rebalance"));
        assertThat(warnings().get(1)).contains("101 failed commit(s) in 10s", "99 of them not logged");
        assertThat(kafka.committed(Set.of(TP))).isEmpty();

        kafka.refusing = false;
        time.advance(Duration.ofMillis(100));
        assignments.commit(false);
        assertThat(kafka.committed(Set.of(TP))).containsEntry(TP, new OffsetAndMetadata(5));
        assertThat(infos())
                .singleElement()
                .asString()
                .contains("offset commits succeed again after 200 failed commit(s) in 20s");

        kafka.refusing = true;
        assignments.enqueue(records(5, 6));
        scheduler.runAll(100);
        time.advance(Duration.ofMillis(100));
        assignments.commit(false);
        assertThat(warnings()).hasSize(3);
    }

    /**
     * The lag of a paused partition (not fetched, so the consumer's view of its end offset stays where
     * the last fetch left it) comes from the end offsets asked for, at most every 5 s, and not in a round
     * of the poll loop that has taken closeTimeout already (a revocation, a slow commit), so that the
     * gap between two polls stays within three close timeouts; a failed request leaves the lag as it
     * was. Fails if the gauge stayed at the last fetch's end offset.
     */
    @Test
    void aPausedPartitionsLagFollowsTheEndOffsetsAskedForAtMostEveryFiveSeconds() {
        HeldConsumer kafka = new HeldConsumer();
        Assignments assignments = assignments(kafka);
        assignments.onPartitionsAssigned(List.of(TP));
        kafka.assign(List.of(TP));
        kafka.updateBeginningOffsets(Map.of(TP, 0L));
        kafka.fetchedEnd = 1000;
        kafka.updateEndOffsets(Map.of(TP, 1000L));
        assignments.enqueue(records(0, 1000)); // not processed: the worker's steps are not run
        assignments.updateLag(time.nanoTime());
        assertThat(kafka.endOffsetsCalls).as("nothing is paused").isZero();
        assertThat(lag()).isEqualTo(1000);

        assignments.updatePauses(); // 1,000 records queued
        assertThat(kafka.paused()).containsExactly(TP);
        kafka.updateEndOffsets(Map.of(TP, 1300L));
        assignments.updateLag(time.nanoTime());
        assertThat(kafka.endOffsetsCalls).isOne();
        assertThat(lag()).isEqualTo(1300);

        kafka.updateEndOffsets(Map.of(TP, 1400L));
        time.advance(Duration.ofSeconds(4));
        assignments.updateLag(time.nanoTime());
        assertThat(kafka.endOffsetsCalls).as("asked less than 5 s ago").isOne();
        assertThat(lag()).isEqualTo(1300);

        time.advance(Duration.ofSeconds(1));
        assignments.updateLag(time.nanoTime() - settings.closeTimeout().toNanos());
        assertThat(kafka.endOffsetsCalls)
                .as("a round that took closeTimeout already")
                .isOne();
        assignments.updateLag(time.nanoTime());
        assertThat(kafka.endOffsetsCalls).isEqualTo(2);
        assertThat(lag()).isEqualTo(1400);

        kafka.failing = true;
        kafka.updateEndOffsets(Map.of(TP, 1500L));
        time.advance(Duration.ofSeconds(5));
        assignments.updateLag(time.nanoTime());
        assertThat(kafka.endOffsetsCalls).isEqualTo(3);
        assertThat(lag()).as("as it was").isEqualTo(1400);
    }

    /**
     * The bytes queued over all partitions pause fetching, however few the records: with a budget of
     * 1,000 bytes, two records of 353 bytes (a 300-byte value and the message id header) queued on
     * orders-0, half the budget, pause it while the partitions with nothing queued go on fetching; a
     * record of 453 bytes on orders-1 brings the whole budget, and every partition is paused; once
     * orders-0's worker has taken its records off, 453 bytes are left, below half, and every partition
     * is fetched again. Fails with nothing paused where partitions paused at 1,000 records only.
     */
    @Test
    void theBytesQueuedPausePartitionsWithRecordsFromHalfTheBudgetAndAllAtTheWhole() {
        Settings budget = Fakes.withMaxBufferedBytes(settings, 1000);
        MockConsumer<byte[], byte[]> kafka = new MockConsumer<>("earliest");
        Assignments assignments = assignments(kafka, budget);
        assignments.onPartitionsAssigned(List.of(P0, P1, P2));
        kafka.assign(List.of(P0, P1, P2));

        assignments.enqueue(records(P0, List.of(sized(P0, 0, 300), sized(P0, 1, 300))));
        assignments.updatePauses();
        assertThat(kafka.paused()).as("706 bytes queued, on orders-0 only").containsExactly(P0);
        assertThat(buffered(budget)).isEqualTo(706);

        assignments.enqueue(records(P1, List.of(sized(P1, 0, 400))));
        assignments.updatePauses();
        assertThat(kafka.paused()).as("1,159 bytes queued: the whole budget").containsExactlyInAnyOrder(P0, P1, P2);

        assertThat(scheduler.runAll(1)).isOne(); // orders-0's step: one transaction of its two records
        assertThat(buffered(budget)).isEqualTo(453);
        assignments.updatePauses();
        assertThat(kafka.paused()).as("453 bytes queued, below half the budget").isEmpty();

        scheduler.runAll(100);
        assertThat(buffered(budget)).isZero();
        assignments.updatePauses();
        assertThat(kafka.paused()).isEmpty();
    }

    /**
     * The records of a revoked partition, left for redelivery, no longer count: the bytes that paused
     * the other partitions are given back with them. Fails if they were still counted.
     */
    @Test
    void aRevokedPartitionsRecordsNoLongerCount() {
        Settings budget = Fakes.withMaxBufferedBytes(settings, 1000);
        MockConsumer<byte[], byte[]> kafka = new MockConsumer<>("earliest");
        Assignments assignments = assignments(kafka, budget);
        assignments.onPartitionsAssigned(List.of(P0, P1));
        kafka.assign(List.of(P0, P1));
        assignments.enqueue(records(P1, List.of(sized(P1, 0, 947))));
        assignments.updatePauses();
        assertThat(kafka.paused()).containsExactlyInAnyOrder(P0, P1);

        assignments.onPartitionsRevoked(List.of(P1));
        kafka.assign(List.of(P0));
        assertThat(buffered(budget)).isZero();
        assignments.updatePauses();
        assertThat(kafka.paused()).doesNotContain(P0);
    }

    private double buffered(Settings s) {
        return s.meterRegistry().get("outbox.consumer.buffered.bytes").gauge().value();
    }

    /** A record of {@code tp} whose value has {@code size} bytes, with a message id header of 53 bytes. */
    private static ConsumerRecord<byte[], byte[]> sized(TopicPartition tp, long offset, int size) {
        ConsumerRecord<byte[], byte[]> r =
                new ConsumerRecord<>(tp.topic(), tp.partition(), offset, null, new byte[size]);
        r.headers()
                .add(
                        OutboxHeaders.MESSAGE_ID,
                        new UUID(tp.partition(), offset).toString().getBytes(StandardCharsets.UTF_8));
        return r;
    }

    private static ConsumerRecords<byte[], byte[]> records(
            TopicPartition tp, List<ConsumerRecord<byte[], byte[]>> records) {
        return new ConsumerRecords<>(Map.of(tp, records), Map.of());
    }

    private double lag() {
        return settings.meterRegistry()
                .get("outbox.consumer.lag")
                .tag("partition", "0")
                .gauge()
                .value();
    }

    private Assignments assignments(MockConsumer<byte[], byte[]> kafka) {
        return assignments(kafka, settings);
    }

    private Assignments assignments(MockConsumer<byte[], byte[]> kafka, Settings settings) {
        logged.start();
        logger.addAppender(logged);
        logger.setLevel(Level.INFO);
        PrefixedLog log = new PrefixedLog(logger, "[consumer-dedup test]");
        Metrics metrics = new Metrics(settings.meterRegistry(), settings.consumerName(), "unit#1");
        PartitionWorker.Parts parts = new PartitionWorker.Parts(
                settings,
                RecordMapping.of(settings, time),
                new Fakes.Store(),
                new Fakes.Sink(),
                Breaker.create("db", "database", log, time, Duration.ofSeconds(30)),
                Breaker.create("dlt", "dead-letter producer", log, time, Duration.ofSeconds(30)),
                metrics,
                log,
                time,
                scheduler);
        return new Assignments(settings, kafka, parts, metrics, log, time);
    }

    private static ConsumerRecords<byte[], byte[]> records(long from, long to) {
        return new ConsumerRecords<>(Map.of(TP, Fakes.records(from, to)), Map.of());
    }

    private List<String> warnings() {
        return lines(Level.WARN);
    }

    private List<String> infos() {
        return lines(Level.INFO).stream()
                .filter(line -> line.contains("offset commit"))
                .toList();
    }

    private List<String> lines(Level level) {
        return logged.list.stream()
                .filter(e -> e.getLevel() == level)
                .map(ILoggingEvent::getFormattedMessage)
                .toList();
    }
}
