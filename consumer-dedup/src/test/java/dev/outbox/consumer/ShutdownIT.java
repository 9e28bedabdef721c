package dev.outbox.consumer;

import static dev.outbox.consumer.Fixtures.payment;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.AppenderBase;
import dev.outbox.consumer.internal.Hooks;
import dev.outbox.core.MessageIds;
import dev.outbox.core.retry.Backoff;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.sql.Connection;
import java.sql.Statement;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.slf4j.LoggerFactory;

/**
 * What {@link IdempotentConsumer#close()} waits for, and what it reports, when the steps the poll
 * thread takes once asked to stop take their whole closeTimeout (README "Shutdown"), on a broker of
 * the test's own that it stops.
 */
@ExtendWith(RealServices.class)
@Timeout(300)
class ShutdownIT {
    private static final Duration WAIT = Duration.ofSeconds(90);
    private static final Duration CLOSE_TIMEOUT = Duration.ofSeconds(6);
    /** What close() used to wait for the poll thread before it returned with the thread running. */
    private static final Duration OLD_BOUND = CLOSE_TIMEOUT.multipliedBy(2).plusSeconds(10);
    /** What it waits now: 6 × closeTimeout + 5 s. */
    private static final Duration BOUND = CLOSE_TIMEOUT.multipliedBy(6).plusSeconds(5);

    /**
     * Kafka is down and a handler does not return (it waits for a row lock the test holds) when close()
     * is called, just as the poll thread starts an offset commit: that commit, the wait for the
     * transactions in flight, their offset commit and the dead-letter producer's close (a dead letter it
     * could not send) each take closeTimeout, 24 s in all with closeTimeout 6 s. close() returns once
     * the poll thread has stopped, after more than the 22 s (2 × closeTimeout + 10 s) it used to wait
     * and within 6 × closeTimeout + 5 s; the handler that did not return is logged at ERROR with its
     * partition, offset, message id and stack, and runs on with its transaction after close(), as the
     * ERROR says. Before, close() gave up after 22 s and returned with a WARN while the poll thread
     * still ran, its Kafka consumer open and its partitions held.
     */
    @Test
    void closeWaitsForEveryStepOfThePollThreadAndNamesTheHandlerThatDoesNotReturn(TestDatabase db) throws Exception {
        String name = "shutdown-steps";
        String topic = "shutdown-steps";
        UUID warmUp = MessageIds.next();
        UUID stuck = MessageIds.next();
        UUID late = MessageIds.next();
        UUID deadLetter = MessageIds.next();
        CountDownLatch stuckInHandler = new CountDownLatch(1);
        CountDownLatch lateInHandler = new CountDownLatch(1);
        CountDownLatch deadLetterInHandler = new CountDownLatch(1);
        CountDownLatch brokerDown = new CountDownLatch(1);
        AtomicReference<IdempotentConsumer> consumerRef = new AtomicReference<>();
        AtomicBoolean armed = new AtomicBoolean();
        AtomicLong closeStarted = new AtomicLong();
        CompletableFuture<Long> closed = new CompletableFuture<>();
        MessageHandler payments = Fixtures.paymentsHandler();
        MeterRegistry registry = new SimpleMeterRegistry();
        Fixtures.createPayments(db);
        try (Connection setup = db.connect();
                Statement st = setup.createStatement()) {
            st.execute("create table if not exists shutdown_lock(id int primary key)");
            st.execute("insert into shutdown_lock values (1) on conflict do nothing");
        }
        // close() is called on a thread of its own as the poll thread is about to commit an offset with Kafka down
        Hooks closeAtACommit = new Hooks() {
            @Override
            public void beforeOffsetCommit(Map<TopicPartition, OffsetAndMetadata> offsets) {
                if (armed.compareAndSet(true, false)) {
                    closeStarted.set(System.nanoTime());
                    Thread closer = new Thread(
                            () -> {
                                try {
                                    consumerRef.get().close();
                                    closed.complete(System.nanoTime());
                                } catch (RuntimeException | Error e) {
                                    closed.completeExceptionally(e);
                                }
                            },
                            "test-closer");
                    closer.setDaemon(true);
                    closer.start();
                }
            }
        };

        try (TestKafka own = TestKafka.startInJvm();
                Connection locker = db.connect();
                LogCapture log = LogCapture.attach()) {
            own.createTopic(topic, 3);
            own.createTopic(topic + ".dlt", 1);
            locker.setAutoCommit(false);
            try (Statement st = locker.createStatement()) {
                st.execute("select * from shutdown_lock where id = 1 for update");
            }
            IdempotentConsumer consumer = Fixtures.builder(own, db, topic, name)
                    .meterRegistry(registry)
                    .concurrency(3)
                    .closeTimeout(CLOSE_TIMEOUT)
                    .backoff(Backoff.of(Duration.ofMillis(50), Duration.ofMillis(500)))
                    // the dead-letter producer keeps the topic's partition once its broker is gone (rather than
                    // start again from the bootstrap address and forget it), so that every publish is sent and
                    // waits for its acknowledgement: one stays in the producer until close
                    .producerProperties(Map.of("metadata.recovery.strategy", "none"))
                    .hooks(closeAtACommit)
                    .handler((m, tx) -> {
                        UUID id = m.messageId();
                        if (id.equals(stuck)) {
                            stuckInHandler.countDown();
                            // waits for the row the test keeps locked, for as long as it does
                            tx.fetch("select * from shutdown_lock where id = 1 for update");
                        } else if (id.equals(late)) {
                            lateInHandler.countDown();
                            // done once Kafka is down: its offset cannot be committed
                            assertThat(brokerDown.await(WAIT.toSeconds(), TimeUnit.SECONDS))
                                    .isTrue();
                        } else if (id.equals(deadLetter)) {
                            deadLetterInHandler.countDown();
                            assertThat(brokerDown.await(WAIT.toSeconds(), TimeUnit.SECONDS))
                                    .isTrue();
                            throw new PermanentHandlerException("not payable");
                        } else if (id.equals(warmUp)) {
                            throw new PermanentHandlerException("not payable");
                        }
                        payments.handle(m, tx);
                    })
                    .build();
            consumerRef.set(consumer);
            try {
                consumer.start();
                try (KafkaProducer<byte[], byte[]> producer = Fixtures.producer(own)) {
                    // a first dead letter: the dead-letter producer exists and knows the topic's partition
                    send(producer, topic, 2, warmUp);
                    await().atMost(WAIT).until(() -> Fixtures.counter(registry, "outbox.consumer.dead.lettered") == 1);
                    send(producer, topic, 0, stuck);
                    send(producer, topic, 1, late);
                    send(producer, topic, 2, deadLetter);
                }
                assertThat(stuckInHandler.await(WAIT.toSeconds(), TimeUnit.SECONDS))
                        .isTrue();
                assertThat(lateInHandler.await(WAIT.toSeconds(), TimeUnit.SECONDS))
                        .isTrue();
                assertThat(deadLetterInHandler.await(WAIT.toSeconds(), TimeUnit.SECONDS))
                        .isTrue();
                Fixtures.awaitLockWait(db, "%shutdown_lock%");

                own.stopBroker();
                brokerDown.countDown();
                // the dead letter waited closeTimeout for an acknowledgement in vain: it stays in the producer
                await().atMost(WAIT)
                        .until(() -> registry.get("outbox.consumer.retries")
                                        .tag("cause", "infrastructure")
                                        .counter()
                                        .count()
                                >= 1);
                armed.set(true);
                long returned = closed.get(3, TimeUnit.MINUTES);

                Duration took = Duration.ofNanos(returned - closeStarted.get());
                assertThat(pollThreads(name))
                        .as("poll threads alive when close() returned")
                        .isEmpty();
                assertThat(took).as("close() took").isGreaterThan(OLD_BOUND).isLessThan(BOUND);
                List<LogCapture.Event> before = log.before(returned);
                String at = topic + "-0@";
                assertThat(before)
                        .filteredOn(e -> e.level() == Level.ERROR)
                        .singleElement()
                        .satisfies(e -> {
                            assertThat(e.message())
                                    .contains("the transaction of " + at, "message id " + stuck)
                                    .contains("waits closeTimeout, 6s, for a step")
                                    .contains("its transaction stays open until the handler returns")
                                    .contains("interrupting it");
                            assertThat(e.stack()).as("the handler's stack").contains("PgStatement");
                        });
                assertThat(before)
                        .as("logged before close() returned")
                        .anyMatch(e -> e.message().endsWith(" stopped"));
                // as the ERROR said: the handler runs on, in its transaction, after close() returned
                assertThat(Fixtures.scalar(
                                db,
                                "select count(*) from pg_stat_activity where datname = current_database()"
                                        + " and wait_event_type = 'Lock' and query like '%shutdown_lock%'"))
                        .isOne();
            } finally {
                locker.rollback();
                armed.set(false);
                consumer.close();
            }
        }
    }

    private static void send(KafkaProducer<byte[], byte[]> producer, String topic, int partition, UUID id)
            throws Exception {
        ProducerRecord<byte[], byte[]> r = payment(topic, id, "order-" + id, 1);
        producer.send(new ProducerRecord<>(topic, partition, r.key(), r.value(), r.headers()))
                .get(30, TimeUnit.SECONDS);
    }

    /** @return the live poll threads of the consumers named {@code name} */
    private static List<String> pollThreads(String name) {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(Thread::isAlive)
                .map(Thread::getName)
                .filter(n -> n.startsWith("outbox-consumer-" + name + "#") && n.endsWith("-poll"))
                .toList();
    }

    /** Records the consumer's log events, with the time each was logged, while attached. */
    private static final class LogCapture extends AppenderBase<ILoggingEvent> implements AutoCloseable {
        record Event(long nanos, Level level, String message, String stack) {}

        private final List<Event> events = new CopyOnWriteArrayList<>();
        private final Logger logger = (Logger) LoggerFactory.getLogger(IdempotentConsumer.class);

        static LogCapture attach() {
            LogCapture capture = new LogCapture();
            capture.setName("shutdown-capture");
            capture.setContext(capture.logger.getLoggerContext());
            capture.start();
            capture.logger.addAppender(capture);
            return capture;
        }

        @Override
        protected void append(ILoggingEvent event) {
            StringBuilder stack = new StringBuilder();
            if (event.getThrowableProxy() != null) {
                for (var frame : event.getThrowableProxy().getStackTraceElementProxyArray()) {
                    stack.append(frame.getSTEAsString()).append('\n');
                }
            }
            events.add(new Event(System.nanoTime(), event.getLevel(), event.getFormattedMessage(), stack.toString()));
        }

        /** @return the events logged before {@code nanos} */
        List<Event> before(long nanos) {
            return events.stream().filter(e -> nanos - e.nanos() > 0).toList();
        }

        @Override
        public void close() {
            logger.detachAppender(this);
            stop();
        }
    }
}
