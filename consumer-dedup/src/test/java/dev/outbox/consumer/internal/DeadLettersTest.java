package dev.outbox.consumer.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.outbox.core.internal.PrefixedLog;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.producer.MockProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.InvalidRecordException;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.errors.ClusterAuthorizationException;
import org.apache.kafka.common.errors.InterruptException;
import org.apache.kafka.common.errors.InvalidTopicException;
import org.apache.kafka.common.errors.NotLeaderOrFollowerException;
import org.apache.kafka.common.errors.OutOfOrderSequenceException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.RecordBatchTooLargeException;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.errors.SaslAuthenticationException;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.errors.TopicAuthorizationException;
import org.apache.kafka.common.errors.TransactionalIdAuthorizationException;
import org.apache.kafka.common.errors.UnknownServerException;
import org.apache.kafka.common.errors.UnsupportedVersionException;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/**
 * G7 against losing dead letters: which failures of a dead-letter publish skip the record (recorded
 * and counted as refused) and which are retried with the partition paused; and that a producer an
 * error left unusable is replaced, so that the retries can succeed. The end-to-end skip of a record too
 * large is {@code FailureClassificationIT}'s, the replacement against a real broker {@code
 * DeadLetterProducerIT}'s.
 */
class DeadLettersTest {

    @Test
    void onlyARefusalOfTheRecordItselfSkipsIt() {
        assertThat(DeadLetters.refusesTheRecordForGood(new RecordTooLargeException("too large")))
                .isTrue();
        assertThat(DeadLetters.refusesTheRecordForGood(new RecordBatchTooLargeException("batch too large")))
                .isTrue();
        assertThat(DeadLetters.refusesTheRecordForGood(
                        new InvalidRecordException("Compacted topic cannot accept message without key")))
                .isTrue();
    }

    /** An expired credential or a missing ACL would otherwise skip every dead letter while it lasts. */
    @Test
    void failuresOfTheDeploymentAreRetriedNotSkipped() {
        assertThat(DeadLetters.refusesTheRecordForGood(new SaslAuthenticationException("token expired")))
                .isFalse();
        assertThat(DeadLetters.refusesTheRecordForGood(new TopicAuthorizationException("no WRITE on the topic")))
                .isFalse();
        assertThat(DeadLetters.refusesTheRecordForGood(new ClusterAuthorizationException("no IDEMPOTENT_WRITE")))
                .isFalse();
        assertThat(DeadLetters.refusesTheRecordForGood(new InvalidTopicException("name too long")))
                .isFalse();
        assertThat(DeadLetters.refusesTheRecordForGood(new UnknownServerException("broker bug")))
                .isFalse();
    }

    @Test
    void errorsAfterWhichTheClientCannotSendAgainLeaveTheProducerUnusable() {
        assertThat(List.<Throwable>of(
                        new SaslAuthenticationException("invalid credentials"),
                        new ClusterAuthorizationException("Cluster authorization failed."),
                        new TransactionalIdAuthorizationException("not authorized"),
                        new UnsupportedVersionException("the broker does not support it"),
                        new ProducerFencedException("fenced"),
                        new OutOfOrderSequenceException("out of order"),
                        new KafkaException("Cannot execute transactional method because we are in an error state"),
                        new IllegalStateException("Cannot perform operation after producer has been closed")))
                .allSatisfy(e -> assertThat(DeadLetters.leavesTheProducerUnusable(e))
                        .as("%s", e)
                        .isTrue());
    }

    /** The same producer publishes once the cause is gone: replacing it would only fail what it still holds. */
    @Test
    void errorsTheProducerSurvivesLeaveItInPlace() {
        assertThat(List.<Throwable>of(
                        new TimeoutException("Topic not present in metadata after 2000 ms."),
                        new NotLeaderOrFollowerException("no leader"),
                        new TopicAuthorizationException("no WRITE on the topic"),
                        new UnknownServerException("broker bug"),
                        new RecordTooLargeException("too large"),
                        new InterruptException(new InterruptedException())))
                .allSatisfy(e -> assertThat(DeadLetters.leavesTheProducerUnusable(e))
                        .as("%s", e)
                        .isFalse());
    }

    /**
     * A publish that fails with an error that left the producer unusable (the broker refused its
     * credential while it asked for its producer id) closes that producer without waiting, counts and
     * reports the replacement, and is retried as any failure of the dead-letter topic; the next publish
     * creates a new producer and succeeds with it. Failed before: the first producer was kept and every
     * later publish failed on it.
     */
    @Test
    void aProducerLeftUnusableIsClosedAndTheNextPublishUsesANewOne() throws Exception {
        Producers producers =
                new Producers(failing(new SaslAuthenticationException("invalid credentials"), false), healthy());
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        try (DeadLetters deadLetters = deadLetters(producers, registry, Duration.ofSeconds(5))) {
            assertThatThrownBy(() -> deadLetters.publish(Fakes.record(0), "handler-failed", null, 3))
                    .isInstanceOf(InfrastructureException.class)
                    .hasCauseInstanceOf(SaslAuthenticationException.class);
            assertThat(producers.made.get(0).closedWith).containsExactly(Duration.ZERO);
            assertThat(replaced(registry)).isOne();

            deadLetters.publish(Fakes.record(0), "handler-failed", null, 3);
            assertThat(producers.made).hasSize(2);
            assertThat(producers.made.get(1).history())
                    .singleElement()
                    .satisfies(r -> assertThat(r.topic()).isEqualTo("orders.dlt"));
            assertThat(replaced(registry)).isOne();
        }
    }

    /** The same when send() itself throws, as a Kafka producer in its error state does. */
    @Test
    void aProducerInItsErrorStateIsReplaced() throws Exception {
        Producers producers = new Producers(
                failing(
                        new KafkaException(
                                "Cannot execute transactional method because we are in an error state",
                                new ProducerFencedException("fenced")),
                        true),
                healthy());
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        try (DeadLetters deadLetters = deadLetters(producers, registry, Duration.ofSeconds(5))) {
            assertThatThrownBy(() -> deadLetters.publish(Fakes.record(0), "handler-failed", null, 3))
                    .isInstanceOf(InfrastructureException.class);
            deadLetters.publish(Fakes.record(0), "handler-failed", null, 3);
            assertThat(producers.made.get(0).closedWith).containsExactly(Duration.ZERO);
            assertThat(producers.made.get(1).history()).hasSize(1);
            assertThat(replaced(registry)).isOne();
        }
    }

    /** The readiness check's metadata request replaces an unusable producer too. */
    @Test
    void aPingThatFindsTheProducerUnusableReplacesIt() throws Exception {
        Recording broken = healthy();
        broken.partitionsForException = new SaslAuthenticationException("invalid credentials");
        Producers producers = new Producers(broken, healthy());
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        try (DeadLetters deadLetters = deadLetters(producers, registry, Duration.ofSeconds(5))) {
            assertThatThrownBy(() -> deadLetters.ping("orders.dlt")).isInstanceOf(InfrastructureException.class);
            assertThat(broken.closed()).isTrue();
            deadLetters.ping("orders.dlt");
            assertThat(producers.made).hasSize(2);
            assertThat(replaced(registry)).isOne();
        }
    }

    /**
     * A timeout, an error of the broker the producer survives and a record the topic refuses keep the
     * producer: it is neither closed nor replaced, and the next publish uses it.
     */
    @Test
    void retriableErrorsAndRefusedRecordsKeepTheProducer() throws Exception {
        List<RuntimeException> errors = List.of(
                new NotLeaderOrFollowerException("no leader"),
                new TopicAuthorizationException("no WRITE on the topic"),
                new InvalidRecordException("Compacted topic cannot accept message without key"));
        for (RuntimeException error : errors) {
            Producers producers = new Producers(failing(error, false));
            SimpleMeterRegistry registry = new SimpleMeterRegistry();
            try (DeadLetters deadLetters = deadLetters(producers, registry, Duration.ofSeconds(5))) {
                for (int i = 0; i < 2; i++) {
                    assertThatThrownBy(() -> deadLetters.publish(Fakes.record(0), "handler-failed", null, 3))
                            .as("%s", error)
                            .isInstanceOfAny(InfrastructureException.class, DeadLetterRefusedException.class);
                }
                assertThat(producers.made).as("%s", error).hasSize(1);
                assertThat(producers.made.get(0).closedWith).as("%s", error).isEmpty();
                assertThat(replaced(registry)).isZero();
            }
        }
        // no acknowledgement within the send timeout
        Producers producers = new Producers(new Recording(true) {
            @Override
            public synchronized Future<RecordMetadata> send(ProducerRecord<byte[], byte[]> record) {
                return new CompletableFuture<>();
            }
        });
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        try (DeadLetters deadLetters = deadLetters(producers, registry, Duration.ofMillis(50))) {
            for (int i = 0; i < 2; i++) {
                assertThatThrownBy(() -> deadLetters.publish(Fakes.record(0), "handler-failed", null, 3))
                        .isInstanceOf(InfrastructureException.class)
                        .hasMessageContaining("did not acknowledge");
            }
            assertThat(producers.made).hasSize(1);
            assertThat(producers.made.get(0).closedWith).isEmpty();
            assertThat(replaced(registry)).isZero();
        }
    }

    /**
     * Many publishes failing on one broken producer at once replace it once: the first closes it, the
     * others find it gone. close() then closes the producer of that moment, with the send timeout.
     */
    @Test
    void publishesFailingTogetherReplaceTheProducerOnceAndCloseClosesItsSuccessor() throws Exception {
        CompletableFuture<RecordMetadata> outcome = new CompletableFuture<>();
        CountDownLatch sent = new CountDownLatch(4);
        Recording broken = new Recording(true) {
            @Override
            public synchronized Future<RecordMetadata> send(ProducerRecord<byte[], byte[]> record) {
                sent.countDown();
                return outcome;
            }
        };
        Producers producers = new Producers(broken, healthy());
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        DeadLetters deadLetters = deadLetters(producers, registry, Duration.ofSeconds(5));
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<Future<?>> publishes = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                long offset = i;
                publishes.add(pool.submit(() -> {
                    deadLetters.publish(Fakes.record(offset), "handler-failed", null, 3);
                    return null;
                }));
            }
            assertThat(sent.await(5, TimeUnit.SECONDS)).isTrue();
            outcome.completeExceptionally(new ClusterAuthorizationException("Cluster authorization failed."));
            for (Future<?> publish : publishes) {
                assertThatThrownBy(() -> publish.get(5, TimeUnit.SECONDS))
                        .hasCauseInstanceOf(InfrastructureException.class);
            }
            assertThat(replaced(registry)).isOne();
            assertThat(broken.closedWith).containsExactly(Duration.ZERO);
            deadLetters.publish(Fakes.record(9), "handler-failed", null, 3);
        } finally {
            pool.shutdownNow();
            deadLetters.close();
        }
        assertThat(producers.made).hasSize(2);
        assertThat(producers.made.get(1).closedWith).containsExactly(Duration.ofSeconds(5));
        assertThat(broken.closedWith).containsExactly(Duration.ZERO);
        assertThatThrownBy(() -> deadLetters.publish(Fakes.record(10), "handler-failed", null, 3))
                .isInstanceOf(InfrastructureException.class)
                .hasMessageContaining("closed");
        assertThat(producers.made).hasSize(2);
    }

    private static DeadLetters deadLetters(Producers producers, SimpleMeterRegistry registry, Duration sendTimeout) {
        Settings settings =
                Fakes.withCloseTimeout(Fakes.settings(3, 10, Duration.ofHours(1), Hooks.NONE, null), sendTimeout);
        Metrics metrics = new Metrics(registry, settings.consumerName(), settings.consumerName() + "#1");
        return new DeadLetters(
                settings,
                metrics.deadLetterProducerReplaced,
                new PrefixedLog(LoggerFactory.getLogger(DeadLettersTest.class), "[dead-letters-test]"),
                producers::next);
    }

    private static double replaced(SimpleMeterRegistry registry) {
        return registry.get(Metrics.DEAD_LETTER_PRODUCER_REPLACED).counter().count();
    }

    private static Recording healthy() {
        return new Recording(true);
    }

    /** @return a producer whose sends fail with {@code error}: thrown by send(), or in the future it returns */
    private static Recording failing(RuntimeException error, boolean thrown) {
        return new Recording(true) {
            @Override
            public synchronized Future<RecordMetadata> send(ProducerRecord<byte[], byte[]> record) {
                if (thrown) {
                    throw error;
                }
                return CompletableFuture.failedFuture(error);
            }
        };
    }

    /** Kafka's {@code MockProducer} that remembers the timeouts it was closed with. */
    private static class Recording extends MockProducer<byte[], byte[]> {
        final List<Duration> closedWith = new CopyOnWriteArrayList<>();

        Recording(boolean autoComplete) {
            super(autoComplete, null, new ByteArraySerializer(), new ByteArraySerializer());
        }

        @Override
        public void close(Duration timeout) {
            closedWith.add(timeout);
            super.close(timeout);
        }
    }

    /** Hands out the given producers in turn, one per creation, and remembers those handed out. */
    private static final class Producers {
        private final Deque<Recording> next;
        final List<Recording> made = new CopyOnWriteArrayList<>();

        Producers(Recording... producers) {
            this.next = new ArrayDeque<>(List.of(producers));
        }

        synchronized Producer<byte[], byte[]> next() {
            Recording p = next.poll();
            if (p == null) {
                throw new IllegalStateException("no producer left: " + made.size() + " made");
            }
            made.add(p);
            return p;
        }
    }
}
