package dev.outbox.relay.internal;

import static org.assertj.core.api.Assertions.assertThat;

import dev.outbox.core.internal.PrefixedLog;
import dev.outbox.core.retry.Backoff;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.producer.MockProducer;
import org.apache.kafka.common.Cluster;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.errors.SaslAuthenticationException;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.errors.TopicAuthorizationException;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/**
 * A topic without metadata, on a fake clock: its lookups and re-checks run when the test moves the
 * time. The end-to-end proof against a real broker is {@code MissingTopicIsolationIT} and {@code
 * UnknownTopicIT} (G7: a held topic's rows still reach maxAttempts and are parked).
 */
class TopicHealthTest {
    private static final Node NODE = ShardWorkerDecisionsTest.NODE;

    private final FakeTime time = new FakeTime();
    private final ManualScheduler lookups = new ManualScheduler(time);
    private final AtomicBoolean exists = new AtomicBoolean();
    private final AtomicInteger wakes = new AtomicInteger();
    // the producers created so far, and what the next lookup throws instead of looking (once)
    private final AtomicInteger created = new AtomicInteger();
    private final AtomicReference<RuntimeException> nextFailure = new AtomicReference<>();
    // the lookup that throws it closes its producer first, as a batch's replacement of it would
    private final AtomicBoolean replacedUnderTheLookup = new AtomicBoolean();
    private final AtomicReference<Publisher> self = new AtomicReference<>();
    private final Publisher shared = new Publisher(
            () -> {
                created.incrementAndGet();
                return new MockProducer<>(
                        new Cluster("c", List.of(NODE), List.of(), Set.of(), Set.of()),
                        true,
                        null,
                        new ByteArraySerializer(),
                        new ByteArraySerializer()) {
                    @Override
                    public List<PartitionInfo> partitionsFor(String topic) {
                        RuntimeException failure = nextFailure.getAndSet(null);
                        if (failure != null) {
                            if (replacedUnderTheLookup.get()) {
                                Publisher p = self.get();
                                p.replace(p.current(), new KafkaException("a batch's send failed"));
                            }
                            throw failure;
                        }
                        if (!exists.get()) {
                            throw new TimeoutException("Topic " + topic + " not present in metadata after 1 ms.");
                        }
                        return List.of(ShardWorkerDecisionsTest.partition(topic));
                    }
                };
            },
            "test");
    // backoff cap 30 s: a shard counts at most one failed check of a topic per 30 s
    private final RelayConfig config =
            ShardWorkerDecisionsTest.config(Backoff.of(Duration.ofMillis(1), Duration.ofSeconds(30)));
    // Kafka answers meanwhile: a failed lookup is evidence that the topic lacks metadata; max.block.ms 1
    private final TopicHealth topics = new TopicHealth(
            config,
            () -> shared,
            since -> true,
            wakes::incrementAndGet,
            new PrefixedLog(LoggerFactory.getLogger(TopicHealthTest.class), "relay[test]"),
            1,
            lookups,
            time);

    {
        self.set(shared);
    }

    @AfterEach
    void close() {
        topics.close();
    }

    /** The first lookup of "t" fails: the topic is missing and a re-check is scheduled. */
    private void missing() {
        // the lookup has not run yet (the test runs it): the worker waits max.block.ms at most, then holds
        assertThat(topics.status("t").state()).isEqualTo(TopicHealth.State.HOLD);
        lookups.runDue();
        assertThat(topics.held()).containsExactly("t");
        assertThat(topics.status("t").state())
                .as("a missing topic's rows are held at once, without a wait")
                .isEqualTo(TopicHealth.State.HOLD);
    }

    @Test
    void aMissingTopicIsCheckedAgainAfterItsBackoffAndItsShardsAreWokenWhenItAppears() {
        missing();
        Object shard = new Object();
        topics.holding("t", shard, true);
        Duration first = lookups.lastDelay();
        assertThat(first).isPositive().isLessThanOrEqualTo(Duration.ofMillis(100));
        lookups.advance(first.minusNanos(1));
        assertThat(lookups.delays).as("not checked again before its backoff").hasSize(1);

        lookups.advance(Duration.ofSeconds(10));
        assertThat(lookups.delays.size())
                .as("checked again at least once a second (the backoff's cap), never in a busy loop")
                .isBetween(10, 200);
        assertThat(topics.held()).containsExactly("t");
        assertThat(wakes).hasValue(0);

        exists.set(true);
        lookups.advance(Duration.ofSeconds(1));
        assertThat(topics.held()).isEmpty();
        assertThat(wakes).as("the idle shards read its rows at once").hasValue(1);
        assertThat(topics.status("t")).isEqualTo(TopicHealth.Status.READY);
    }

    /**
     * Topics named per tenant or per day: a topic no batch met for five minutes, and whose rows no
     * shard remembers, is forgotten, so that the relay does not keep every topic it ever published
     * to; one asked about meanwhile, or whose held rows a shard remembers, stays.
     */
    @Test
    void aTopicNoBatchMetForFiveMinutesIsForgotten() {
        exists.set(true);
        for (String topic : List.of("day-1", "day-2", "kept")) {
            topics.status(topic);
            lookups.runDue();
            assertThat(topics.status(topic)).isEqualTo(TopicHealth.Status.READY);
        }
        Object shard = new Object();
        topics.holding("day-2", shard, true);
        time.advance(Duration.ofMinutes(4));
        topics.status("kept");
        time.advance(Duration.ofMinutes(1));
        assertThat(topics.status("kept")).isEqualTo(TopicHealth.Status.READY);
        assertThat(topics.known())
                .as("day-1 forgotten; day-2 has rows a shard remembers; kept was asked a minute ago")
                .isEqualTo(2);
        topics.releaseAll(shard);
        lookups.runDue(); // kept's look again in the background, started as it was asked
        time.advance(Duration.ofMinutes(6));
        topics.status("day-3");
        assertThat(topics.known()).as("only the topic just asked about").isEqualTo(1);
    }

    @Test
    void aMissingTopicStaysHeldWhileAShardRemembersItsRowsAndBrieflyAfter() {
        missing();
        long asked = time.nanoTime();
        time.advance(Duration.ofNanos(TopicHealth.HELD_AFTER_ASKED_NANOS - 1));
        assertThat(topics.held()).as("a batch met its rows just now").containsExactly("t");
        lookups.advance(Duration.ofNanos(1));
        assertThat(topics.held())
                .as("no shard remembers its rows and no batch met one for %d ns", time.nanoTime() - asked)
                .isEmpty();
        assertThat(topics.status("t").state())
                .as("its rows are still held when a batch meets them")
                .isEqualTo(TopicHealth.State.HOLD);
        assertThat(topics.held()).containsExactly("t");

        Object one = new Object();
        Object two = new Object();
        topics.holding("t", one, true);
        topics.holding("t", two, true);
        lookups.advance(Duration.ofMinutes(6));
        assertThat(topics.held())
                .as("two shards remember rows of it, six minutes after a batch last met one")
                .containsExactly("t");
        topics.holding("t", one, false);
        lookups.advance(Duration.ofSeconds(10));
        assertThat(topics.held()).as("one shard still remembers rows of it").containsExactly("t");
        topics.releaseAll(two);
        assertThat(topics.held())
                .as("the shard of the last one stopped, and no batch met a row for 10 s")
                .isEmpty();
        topics.holding("t", one, true);
        topics.holding("t", one, false);
        assertThat(topics.held())
                .as("the last shard let go just now: a re-read of its rows finds the topic held")
                .containsExactly("t");
        lookups.advance(Duration.ofNanos(TopicHealth.HELD_AFTER_ASKED_NANOS));
        assertThat(topics.held()).isEmpty();
        lookups.advance(Duration.ofMinutes(5));
        int checks = lookups.delays.size();
        lookups.advance(Duration.ofMinutes(1));
        assertThat(lookups.delays.size())
                .as("forgotten (no more re-checks) five minutes after the last shard let go")
                .isEqualTo(checks);
    }

    @Test
    void aShardCountsAtMostOneFailedCheckPerBackoffCapAsAnAttempt() {
        missing();
        TopicHealth.Uncounted first = topics.uncountedCheck("t", 7);
        assertThat(first).isNotNull();
        topics.counted("t", 7, first);
        assertThat(topics.uncountedCheck("t", 7)).isNull();

        // re-checks every 100 ms to 1 s fail meanwhile; none is a new attempt before the cap (30 s)
        lookups.advance(Duration.ofSeconds(30).minusMillis(1));
        assertThat(lookups.delays.size()).as("re-checked again and again").isGreaterThan(20);
        assertThat(topics.uncountedCheck("t", 7)).isNull();
        assertThat(topics.uncountedCheck("t", 8))
                .as("another shard has its own count")
                .extracting(TopicHealth.Uncounted::check)
                .isEqualTo(first.check());

        lookups.advance(Duration.ofSeconds(1));
        TopicHealth.Uncounted second = topics.uncountedCheck("t", 7);
        assertThat(second).isNotNull();
        assertThat(second.check()).isEqualTo(first.check() + 1);
    }

    /**
     * A re-check of a missing topic runs on a producer that a batch's failure replaces meanwhile: the
     * closed producer's error says nothing of the topic. The topic is no longer held on the evidence of
     * the failed lookups; the next batch that meets its rows looks it up on the new producer, the
     * re-checks start again, and its rows go out once it appears. Before, the re-checks ended there
     * while the topic stayed missing: its rows were held until the relay restarted.
     */
    @Test
    void aReCheckOnAProducerClosedUnderItLeavesTheTopicToTheNextBatch() {
        missing();
        topics.holding("t", new Object(), true);
        replacedUnderTheLookup.set(true);
        nextFailure.set(new IllegalStateException("Cannot perform operation after producer has been closed"));
        lookups.advance(Duration.ofSeconds(1));
        assertThat(nextFailure).as("the re-check ran").hasNullValue();
        assertThat(created).as("replaced by the batch").hasValue(2);
        assertThat(topics.held())
                .as("not missing on the closed producer's error")
                .isEmpty();

        assertThat(topics.status("t").state())
                .as("a batch meeting its rows waits for a lookup")
                .isEqualTo(TopicHealth.State.HOLD);
        lookups.runDue();
        assertThat(topics.held()).as("missing again, on the new producer").containsExactly("t");
        exists.set(true);
        lookups.advance(Duration.ofSeconds(2));
        assertThat(topics.held()).as("checked again, and found").isEmpty();
        assertThat(wakes).hasValue(1);
        assertThat(topics.status("t")).isEqualTo(TopicHealth.Status.READY);
    }

    /**
     * A re-check of a missing topic fails for good (its topic is forbidden now): the topic is no longer
     * held on the evidence of the failed lookups, so that the next batch meeting its rows looks it up
     * and learns the error (and parks the rows), rather than hold them for as long as the relay runs.
     */
    @Test
    void aMissingTopicWhoseReCheckFailsForGoodIsNoLongerHeld() {
        missing();
        topics.holding("t", new Object(), true);
        nextFailure.set(new TopicAuthorizationException(Set.of("t")));
        lookups.advance(Duration.ofSeconds(1));
        assertThat(nextFailure).as("the re-check ran").hasNullValue();
        assertThat(topics.held()).isEmpty();
        nextFailure.set(new TopicAuthorizationException(Set.of("t")));
        assertThat(topics.status("t").state())
                .as("a batch meeting its rows waits for a lookup of its own")
                .isEqualTo(TopicHealth.State.HOLD);
        lookups.runDue();
        assertThat(nextFailure).as("that lookup ran").hasNullValue();
        assertThat(topics.held()).isEmpty();
    }

    /**
     * A producer that failed to sign in says so once, to the first call that waits for metadata, and
     * its sends only time out afterwards. When that call is a lookup no worker waits for (here the
     * background look at a known topic), the lookup replaces the producer it used: left in place, the
     * relay published nothing until a restart (G1's liveness). Not at once, so that a batch that took
     * the answer replaces it first, as a failure the circuit breaker counts.
     */
    @Test
    void aLookupNoWorkerWaitedForReplacesTheProducerItFoundUnusable() {
        exists.set(true);
        topics.status("t");
        lookups.runDue();
        assertThat(topics.status("t")).isEqualTo(TopicHealth.Status.READY);
        Publisher.Generation first = shared.current();

        nextFailure.set(new SaslAuthenticationException("Authentication failed during authentication"));
        time.advance(Duration.ofSeconds(1));
        assertThat(topics.status("t"))
                .as("known: the look runs in the background")
                .isEqualTo(TopicHealth.Status.READY);
        lookups.runDue();
        assertThat(nextFailure).as("the look ran").hasNullValue();
        assertThat(created).as("a worker may still take the answer").hasValue(1);

        lookups.advance(Duration.ofNanos(TopicHealth.REPLACE_AFTER_NANOS));
        assertThat(created).as("replaced by the lookup").hasValue(2);
        assertThat(shared.isCurrent(first)).isFalse();
    }

    /**
     * A batch took the lookup's answer and replaced the producer: the lookup's own replacement, later,
     * finds it replaced and leaves the successor alone. Replacing the successor too made the relay's
     * producers churn, each closed before it could sign in.
     */
    @Test
    void aProducerABatchReplacedIsNotReplacedAgainByTheLookup() {
        exists.set(true);
        topics.status("t");
        lookups.runDue();
        time.advance(Duration.ofSeconds(1));
        nextFailure.set(new SaslAuthenticationException("Authentication failed during authentication"));
        topics.status("t");
        lookups.runDue();

        shared.replace(shared.current(), new SaslAuthenticationException("the batch's copy of the answer"));
        assertThat(created).hasValue(2);
        Publisher.Generation successor = shared.current();
        lookups.advance(Duration.ofSeconds(5));
        assertThat(created).as("one replacement for one report").hasValue(2);
        assertThat(shared.isCurrent(successor)).isTrue();
    }
}
