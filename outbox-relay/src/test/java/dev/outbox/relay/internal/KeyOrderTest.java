package dev.outbox.relay.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.producer.MockProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.config.ConfigException;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.Test;

/**
 * G3 inside one batch: the decisions that keep a later record of a key from overtaking an earlier
 * one that failed. The producers are Kafka's {@code MockProducer}; that a replaced producer really
 * drops what it holds is shown against real brokers by {@code ReorderUnderLeaderLossIT}.
 */
class KeyOrderTest {
    private final List<MockProducer<byte[], byte[]>> made = new ArrayList<>();
    private final Publisher publisher = new Publisher(
            () -> {
                MockProducer<byte[], byte[]> p =
                        new MockProducer<>(false, null, new ByteArraySerializer(), new ByteArraySerializer());
                made.add(p);
                return p;
            },
            "test");

    @Test
    void aFailureWhileALaterRecordOfTheKeyIsPendingReplacesAndClosesTheProducer() {
        Publisher.Generation first = publisher.current();
        KeyOrder order = new KeyOrder(publisher, first);
        assertThat(order.hand("k")).isTrue(); // x
        assertThat(order.hand("k")).isTrue(); // y, queued behind x

        order.answered("k", new TimeoutException("Expiring 1 record(s)"), false);

        assertThat(publisher.current()).isNotSameAs(first);
        assertThat(publisher.current().number()).isEqualTo(2);
        assertThat(made.get(0).closed())
                .as("the old producer is closed, so y is never written ahead of x")
                .isTrue();
        assertThat(order.stoppedProducer()).isTrue();
        assertThat(order.hand("k")).as("nothing more of the key in this batch").isFalse();
        assertThat(order.hand("other")).isTrue();
    }

    @Test
    void aFailureWithNothingElseOfTheKeyPendingKeepsTheProducer() {
        Publisher.Generation first = publisher.current();
        KeyOrder order = new KeyOrder(publisher, first);
        order.hand("k");
        order.hand("j");
        order.hand("j");

        order.answered("k", new TimeoutException("Expiring 1 record(s)"), false);

        assertThat(publisher.current()).isSameAs(first);
        assertThat(made.get(0).closed()).isFalse();
        assertThat(order.stoppedProducer()).isFalse();
        assertThat(order.hand("k"))
                .as("the key's later rows wait for the next round")
                .isFalse();
    }

    /**
     * A failure reported inside send() (a record larger than max.request.size) while an earlier record of
     * the key is still unanswered: nothing of the key was handed after it, so nothing can overtake, and
     * the producer, which every shard shares, is kept. Before, it was replaced, failing every record in
     * flight of every shard.
     */
    @Test
    void aFailureInsideSendWhileAnEarlierRecordOfTheKeyIsPendingKeepsTheProducer() {
        Publisher.Generation first = publisher.current();
        KeyOrder order = new KeyOrder(publisher, first);
        order.hand("k"); // x, with the producer
        order.hand("k"); // y, too large: refused inside send()

        order.answered("k", new RecordTooLargeException("too large"), true);

        assertThat(publisher.current()).isSameAs(first);
        assertThat(made.get(0).closed()).isFalse();
        assertThat(order.stoppedProducer()).isFalse();
        assertThat(order.hand("k"))
                .as("the key's later rows wait for the next round")
                .isFalse();
    }

    @Test
    void aFailureAfterTheKeysEarlierRecordsWereAcknowledgedKeepsTheProducer() {
        Publisher.Generation first = publisher.current();
        KeyOrder order = new KeyOrder(publisher, first);
        order.hand("k");
        order.hand("k");
        order.answered("k", null, false);

        order.answered("k", new TimeoutException("Expiring 1 record(s)"), false);

        assertThat(publisher.current()).isSameAs(first);
    }

    @Test
    void aSecondFailureOfTheKeyDoesNotReplaceAgain() {
        KeyOrder order = new KeyOrder(publisher, publisher.current());
        order.hand("k");
        order.hand("k");
        order.hand("k");
        order.answered("k", new TimeoutException("x"), false);
        Publisher.Generation second = publisher.current();

        order.answered("k", new TimeoutException("y"), false);

        assertThat(publisher.current()).isSameAs(second);
        assertThat(made).hasSize(2);
    }

    @Test
    void keysWithoutAKeyAreNotTracked() {
        KeyOrder order = new KeyOrder(publisher, publisher.current());
        assertThat(order.hand(null)).isTrue();
        order.answered(null, new TimeoutException("x"), false);
        assertThat(order.hand(null)).isTrue();
        assertThat(made).hasSize(1);
    }

    /**
     * G3 when the successor cannot be created (every bootstrap host fails to resolve): the failed producer
     * is closed all the same, nothing is current, and {@link Publisher#current()} fails at once with the
     * cause and what to check, creating a producer again only after its backoff, and then one that works.
     */
    @Test
    void aReplacementThatCannotBeCreatedClosesTheOldProducerAndIsCreatedAgainAfterABackoff() {
        FakeTime time = new FakeTime();
        AtomicReference<RuntimeException> failure = new AtomicReference<>();
        AtomicInteger creations = new AtomicInteger();
        List<MockProducer<byte[], byte[]>> producers = new ArrayList<>();
        Publisher failing = new Publisher(
                () -> {
                    creations.incrementAndGet();
                    if (failure.get() != null) {
                        throw failure.get();
                    }
                    MockProducer<byte[], byte[]> p =
                            new MockProducer<>(true, null, new ByteArraySerializer(), new ByteArraySerializer());
                    producers.add(p);
                    return p;
                },
                "test",
                time::nanoTime);
        Publisher.Generation first = failing.current();
        KeyOrder order = new KeyOrder(failing, first);
        order.hand("k");
        order.hand("k");
        failure.set(new KafkaException(
                "Failed to construct kafka producer",
                new ConfigException("No resolvable bootstrap urls given in bootstrap.servers")));

        order.answered("k", new TimeoutException("Expiring 1 record(s)"), false);

        assertThat(producers.get(0).closed())
                .as("the key's later record it holds is dropped, not written ahead of the failed one")
                .isTrue();
        assertThat(order.stoppedProducer()).isTrue();
        assertThat(failing.isCurrent(first)).isFalse();
        assertThatThrownBy(failing::current)
                .isInstanceOf(Publisher.Unavailable.class)
                .hasMessageContaining("No resolvable bootstrap urls")
                .hasMessageContaining("next try in");
        assertThat(creations).as("no creation before the backoff").hasValue(2);

        time.advance(Publisher.FIRST_RETRY);
        assertThatThrownBy(failing::current)
                .isInstanceOf(Publisher.Unavailable.class)
                .hasMessageContaining("bootstrap.servers resolve");
        assertThat(creations).hasValue(3);

        failure.set(null);
        time.advance(Publisher.retryDelay(2).minusNanos(1));
        assertThatThrownBy(failing::current).isInstanceOf(Publisher.Unavailable.class);
        time.advance(Duration.ofNanos(1));
        Publisher.Generation second = failing.current();
        assertThat(second.number()).isEqualTo(2);
        assertThat(failing.current()).isSameAs(second);
        second.producer().send(new ProducerRecord<>("t", new byte[] {1}));
        assertThat(producers.get(1).history()).hasSize(1);
        assertThat(producers.get(1).closed()).isFalse();
    }

    @Test
    void theWaitBetweenCreationsDoublesUpToItsCap() {
        assertThat(Publisher.retryDelay(1)).isEqualTo(Publisher.FIRST_RETRY);
        assertThat(Publisher.retryDelay(2)).isEqualTo(Publisher.FIRST_RETRY.multipliedBy(2));
        assertThat(Publisher.retryDelay(100)).isEqualTo(Publisher.MAX_RETRY);
    }

    /** m9: many shards failing on one broken producer replace it once, not once each. */
    @Test
    void manyShardsReportingOneBrokenProducerReplaceItOnce() {
        Publisher.Generation broken = publisher.current();
        for (int shard = 0; shard < 64; shard++) {
            publisher.replace(broken, new IllegalStateException("Producer is closed forcefully."));
        }
        assertThat(publisher.current().number()).isEqualTo(2);
        assertThat(made).hasSize(2);
        assertThat(made.get(0).closed()).isTrue();
        assertThat(made.get(1).closed()).isFalse();
    }
}
