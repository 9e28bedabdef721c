package dev.outbox.spring.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.MockConsumer;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.springframework.kafka.listener.AfterRollbackProcessor;
import org.springframework.kafka.listener.CommonErrorHandler;
import org.springframework.kafka.listener.ContainerProperties;

/**
 * The starter's after-rollback processor, which listener containers that run Kafka transactions call
 * after each rollback, beside the starter's error handler that runs inside the transaction. The
 * consumer is Kafka's {@code MockConsumer}; the position it is left at is where the next poll reads.
 */
class ListenerRetriesTest {
    private static final TopicPartition ORDERS = new TopicPartition("orders", 0);
    private static final Duration POLL_INTERVAL = Duration.ofMinutes(5);
    private final IllegalStateException failure = new IllegalStateException("ledger unavailable");

    private final MockConsumer<Object, Object> consumer = new MockConsumer<>("earliest");

    @BeforeEach
    void assignThePartition() {
        consumer.assign(List.of(ORDERS));
        consumer.updateBeginningOffsets(Map.of(ORDERS, 0L));
    }

    /**
     * A record rolled back again and again is sought back to every time: never recovered, so never
     * skipped or dead-lettered. Spring Kafka's default after-rollback processor recovers it at the
     * tenth failure and leaves the position where it was.
     */
    @Test
    void aRecordRolledBackAgainAndAgainIsAlwaysSoughtBackTo() {
        AfterRollbackProcessor<Object, Object> processor =
                ListenerRetries.afterRollbackProcessor(Duration.ofMillis(1), Duration.ofMillis(1), POLL_INTERVAL);
        ConsumerRecord<Object, Object> record = record(3);
        for (int rollback = 1; rollback <= 25; rollback++) {
            consumer.seek(ORDERS, 7);
            processor.process(List.of(record), consumer, null, failure, true, ContainerProperties.EOSMode.V2);
            assertThat(consumer.position(ORDERS))
                    .as("the position after rollback %d", rollback)
                    .isEqualTo(3);
        }
    }

    /**
     * Each failed delivery waits once, on the handler's back-off: after the error handler waited and
     * threw for the record, the processor seeks back without waiting again (two waits of up to {@code
     * max-interval} in one poll loop could exceed the consumers' poll interval); after a rollback the
     * handler did not wait for (the transaction's commit failed), the processor waits itself.
     */
    @Test
    void eachFailedDeliveryWaitsOnceOnTheHandlersBackOff() {
        Duration wait = Duration.ofMillis(800);
        CommonErrorHandler handler = ListenerRetries.errorHandler(wait, wait, POLL_INTERVAL);
        AfterRollbackProcessor<Object, Object> processor =
                ListenerRetries.afterRollbackProcessor(wait, wait, POLL_INTERVAL);
        ConsumerRecord<Object, Object> failed = record(3);

        long start = System.nanoTime();
        assertThatThrownBy(() -> handler.handleRemaining(failure, List.of(failed), consumer, null))
                .as("the handler throws (Spring Kafka's record-in-retry exception), which rolls the transaction back")
                .hasMessageContaining("Record in retry");
        assertThat(Duration.ofNanos(System.nanoTime() - start))
                .as("the handler's wait")
                .isGreaterThanOrEqualTo(wait);

        start = System.nanoTime();
        processor.process(List.of(failed), consumer, null, failure, true, ContainerProperties.EOSMode.V2);
        assertThat(Duration.ofNanos(System.nanoTime() - start))
                .as("the processor's wait after the handler's")
                .isLessThan(wait.dividedBy(2));
        assertThat(consumer.position(ORDERS)).isEqualTo(3);

        ConsumerRecord<Object, Object> uncommitted = record(4);
        start = System.nanoTime();
        processor.process(List.of(uncommitted), consumer, null, failure, true, ContainerProperties.EOSMode.V2);
        assertThat(Duration.ofNanos(System.nanoTime() - start))
                .as("the processor's wait after a rollback the handler did not wait for")
                .isGreaterThanOrEqualTo(wait);
        assertThat(consumer.position(ORDERS)).isEqualTo(4);
    }

    private static ConsumerRecord<Object, Object> record(long offset) {
        return new ConsumerRecord<>(ORDERS.topic(), ORDERS.partition(), offset, "o-1", "100");
    }
}
