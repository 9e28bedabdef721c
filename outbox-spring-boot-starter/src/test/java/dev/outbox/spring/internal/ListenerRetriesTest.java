package dev.outbox.spring.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchRuntimeException;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.MockConsumer;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;
import org.springframework.jdbc.datasource.DataSourceTransactionManager;
import org.springframework.kafka.core.DefaultKafkaConsumerFactory;
import org.springframework.kafka.core.DefaultKafkaProducerFactory;
import org.springframework.kafka.listener.AbstractMessageListenerContainer;
import org.springframework.kafka.listener.AfterRollbackProcessor;
import org.springframework.kafka.listener.CommonErrorHandler;
import org.springframework.kafka.listener.ContainerProperties;
import org.springframework.kafka.listener.DefaultAfterRollbackProcessor;
import org.springframework.kafka.listener.KafkaMessageListenerContainer;
import org.springframework.kafka.listener.MessageListenerContainer;
import org.springframework.kafka.transaction.KafkaTransactionManager;

/**
 * The starter's after-rollback processor, which listener containers that run transactions call after
 * each rollback, beside the starter's error handler that runs inside the transaction, and which of the
 * two waits. The consumer is Kafka's {@code MockConsumer}; the position it is left at is where the next
 * poll reads.
 */
class ListenerRetriesTest {
    private static final TopicPartition ORDERS = new TopicPartition("orders", 0);
    private static final Duration POLL_INTERVAL = Duration.ofMinutes(5);
    private final IllegalStateException failure = new IllegalStateException("ledger unavailable");

    private final MockConsumer<Object, Object> consumer = new MockConsumer<>("earliest");

    /** What the starter's retries log. */
    private final ListAppender<ILoggingEvent> log = new ListAppender<>();

    private final Logger retries = (Logger) LoggerFactory.getLogger(ListenerRetries.class);

    @BeforeEach
    void assignThePartition() {
        consumer.assign(List.of(ORDERS));
        consumer.updateBeginningOffsets(Map.of(ORDERS, 0L));
        log.start();
        retries.addAppender(log);
    }

    @AfterEach
    void releaseTheLog() {
        retries.detachAppender(log);
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

    /**
     * In a container that runs Kafka transactions the handler, which Spring Kafka calls inside the
     * transaction, fails the delivery at once, and the processor, called after the rollback, waits on
     * the back-off, doubling, and logs each failed attempt at WARN with its position and number.
     */
    @Test
    void inKafkaTransactionsTheProcessorWaitsNotTheHandler() {
        Duration initial = Duration.ofMillis(300);
        CommonErrorHandler handler = ListenerRetries.errorHandler(initial, initial.multipliedBy(4), POLL_INTERVAL);
        AfterRollbackProcessor<Object, Object> processor =
                ListenerRetries.afterRollbackProcessor(initial, initial.multipliedBy(4), POLL_INTERVAL);
        MessageListenerContainer container = inKafkaTransactions(processor);
        ConsumerRecord<Object, Object> failed = record(3);

        for (int attempt = 1; attempt <= 2; attempt++) {
            long start = System.nanoTime();
            RuntimeException thrown =
                    catchRuntimeException(() -> handler.handleRemaining(failure, List.of(failed), consumer, container));
            assertThat(thrown)
                    .as("what the handler throws inside the transaction, which rolls it back")
                    .isInstanceOf(ListenerRetries.RetryAfterRollback.class)
                    .hasCause(failure);
            assertThat(Duration.ofNanos(System.nanoTime() - start))
                    .as("the handler's wait inside the transaction")
                    .isLessThan(initial.dividedBy(2));

            consumer.seek(ORDERS, 7);
            start = System.nanoTime();
            processor.process(List.of(failed), consumer, container, thrown, true, ContainerProperties.EOSMode.V2);
            assertThat(Duration.ofNanos(System.nanoTime() - start))
                    .as("the processor's wait after rollback %d", attempt)
                    .isGreaterThanOrEqualTo(initial.multipliedBy(attempt));
            assertThat(consumer.position(ORDERS)).isEqualTo(3);
        }
        assertThat(warnings())
                .as("one WARN per failed attempt")
                .satisfiesExactly(
                        w -> assertThat(w).startsWith("[outbox] @KafkaListener failed on orders-0@3 (attempt 1)"),
                        w -> assertThat(w).startsWith("[outbox] @KafkaListener failed on orders-0@3 (attempt 2)"));
    }

    /**
     * A batch listener's failure in a Kafka transaction: the handler does not deliver the batch again
     * itself, inside the transaction, but fails at once; the processor seeks back to the batch, logs the
     * attempt and waits, its count and back-off starting again once a batch succeeded.
     */
    @Test
    void inKafkaTransactionsABatchIsDeliveredAgainAfterTheRollback() {
        Duration initial = Duration.ofMillis(300);
        CommonErrorHandler handler = ListenerRetries.errorHandler(initial, initial.multipliedBy(4), POLL_INTERVAL);
        AfterRollbackProcessor<Object, Object> processor =
                ListenerRetries.afterRollbackProcessor(initial, initial.multipliedBy(4), POLL_INTERVAL);
        MessageListenerContainer container = inKafkaTransactions(processor);
        List<ConsumerRecord<Object, Object>> batch = List.of(record(3), record(4));
        ConsumerRecords<Object, Object> records = new ConsumerRecords<>(Map.of(ORDERS, batch), Map.of());

        for (int attempt = 1; attempt <= 3; attempt++) {
            long start = System.nanoTime();
            RuntimeException thrown =
                    catchRuntimeException(() -> handler.handleBatch(failure, records, consumer, container, () -> {
                        throw new AssertionError("the batch was delivered again inside the transaction");
                    }));
            assertThat(thrown).isInstanceOf(ListenerRetries.RetryAfterRollback.class);
            assertThat(Duration.ofNanos(System.nanoTime() - start))
                    .as("the handler's wait inside the transaction")
                    .isLessThan(initial.dividedBy(2));

            consumer.seek(ORDERS, 7);
            start = System.nanoTime();
            processor.processBatch(records, batch, consumer, container, thrown, false, ContainerProperties.EOSMode.V2);
            assertThat(Duration.ofNanos(System.nanoTime() - start))
                    .as("the processor's wait after rollback %d", attempt)
                    .isGreaterThanOrEqualTo(initial.multipliedBy(attempt == 3 ? 1 : attempt));
            assertThat(consumer.position(ORDERS)).isEqualTo(3);
            if (attempt == 2) {
                // what the container does when a batch succeeds after a failure
                processor.clearThreadState();
            }
        }
        assertThat(warnings())
                .as("one WARN per failed attempt, counted again after a success")
                .satisfiesExactly(
                        w -> assertThat(w)
                                .startsWith("[outbox] batch @KafkaListener failed on a batch of 2 records"
                                        + " (attempt 1)"),
                        w -> assertThat(w).contains("(attempt 2)"),
                        w -> assertThat(w).contains("(attempt 1)"));
    }

    /** Kafka transactions as Spring Kafka's container finds them; none with a null container. */
    @Test
    void whichContainersRunKafkaTransactions() {
        assertThat(ListenerRetries.runsKafkaTransactions(null)).isFalse();
        assertThat(ListenerRetries.runsKafkaTransactions(running(new ContainerProperties("orders"))))
                .isFalse();
        ContainerProperties jdbc = new ContainerProperties("orders");
        jdbc.setTransactionManager(new DataSourceTransactionManager());
        assertThat(ListenerRetries.runsKafkaTransactions(running(jdbc))).isFalse();
        assertThat(ListenerRetries.runsKafkaTransactions(running(inKafkaTransactions())))
                .isTrue();
    }

    /** Outside Kafka transactions the handler waits, as before, and the processor does not wait again. */
    @Test
    void outsideKafkaTransactionsTheHandlerWaits() {
        Duration wait = Duration.ofMillis(500);
        CommonErrorHandler handler = ListenerRetries.errorHandler(wait, wait, POLL_INTERVAL);
        AfterRollbackProcessor<Object, Object> processor =
                ListenerRetries.afterRollbackProcessor(wait, wait, POLL_INTERVAL);
        ContainerProperties jdbc = new ContainerProperties("orders");
        jdbc.setTransactionManager(new DataSourceTransactionManager());
        MessageListenerContainer container = running(jdbc);
        ConsumerRecord<Object, Object> failed = record(3);

        long start = System.nanoTime();
        RuntimeException thrown =
                catchRuntimeException(() -> handler.handleRemaining(failure, List.of(failed), consumer, container));
        assertThat(thrown).hasMessageContaining("Record in retry");
        assertThat(Duration.ofNanos(System.nanoTime() - start))
                .as("the handler's wait")
                .isGreaterThanOrEqualTo(wait);
        start = System.nanoTime();
        processor.process(List.of(failed), consumer, container, thrown, true, ContainerProperties.EOSMode.V2);
        assertThat(Duration.ofNanos(System.nanoTime() - start))
                .as("the processor's wait after the handler's")
                .isLessThan(wait.dividedBy(2));
        assertThat(warnings()).as("the handler's WARN").hasSize(1);
    }

    /**
     * In Kafka transactions with an after-rollback processor of the application's, nothing else would
     * wait: the handler waits, as it did before, rather than retry without a back-off.
     */
    @Test
    void inKafkaTransactionsWithAnotherAfterRollbackProcessorTheHandlerWaits() {
        Duration wait = Duration.ofMillis(300);
        CommonErrorHandler handler = ListenerRetries.errorHandler(wait, wait, POLL_INTERVAL);
        MessageListenerContainer container = inKafkaTransactions(new DefaultAfterRollbackProcessor<>());

        long start = System.nanoTime();
        RuntimeException thrown =
                catchRuntimeException(() -> handler.handleRemaining(failure, List.of(record(3)), consumer, container));
        assertThat(thrown).hasMessageContaining("Record in retry");
        assertThat(Duration.ofNanos(System.nanoTime() - start))
                .as("the handler's wait")
                .isGreaterThanOrEqualTo(wait);
    }

    private List<String> warnings() {
        return log.list.stream()
                .filter(e -> e.getLevel() == Level.WARN)
                .map(ILoggingEvent::getFormattedMessage)
                .toList();
    }

    private static ContainerProperties inKafkaTransactions() {
        DefaultKafkaProducerFactory<Object, Object> producers = new DefaultKafkaProducerFactory<>(Map.of());
        producers.setTransactionIdPrefix("orders-");
        ContainerProperties properties = new ContainerProperties("orders");
        properties.setKafkaAwareTransactionManager(new KafkaTransactionManager<>(producers));
        return properties;
    }

    /** @return a container that is running (its back-offs wait their full time), with these properties */
    private static AbstractMessageListenerContainer<Object, Object> running(ContainerProperties properties) {
        return new KafkaMessageListenerContainer<>(new DefaultKafkaConsumerFactory<>(Map.of()), properties) {
            @Override
            public boolean isRunning() {
                return true;
            }
        };
    }

    /** @return {@link #running} with Kafka transactions, its rolled-back deliveries handed to {@code processor} */
    private static MessageListenerContainer inKafkaTransactions(AfterRollbackProcessor<Object, Object> processor) {
        AbstractMessageListenerContainer<Object, Object> container = running(inKafkaTransactions());
        container.setAfterRollbackProcessor(processor);
        return container;
    }

    private static ConsumerRecord<Object, Object> record(long offset) {
        return new ConsumerRecord<>(ORDERS.topic(), ORDERS.partition(), offset, "o-1", "100");
    }
}
