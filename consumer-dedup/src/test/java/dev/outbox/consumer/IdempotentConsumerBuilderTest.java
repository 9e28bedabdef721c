package dev.outbox.consumer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.io.PrintWriter;
import java.lang.reflect.Proxy;
import java.sql.Connection;
import java.time.Duration;
import java.time.temporal.ChronoUnit;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;
import java.util.logging.Logger;
import javax.sql.DataSource;
import org.jooq.SQLDialect;
import org.jooq.impl.DSL;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/** Bad configuration fails at build time with a message that names the setting. */
class IdempotentConsumerBuilderTest {

    /** Never connected to: validation fails before anything is opened. */
    private static final DataSource NO_DATABASE = new DataSource() {
        @Override
        public Connection getConnection() {
            throw new UnsupportedOperationException();
        }

        @Override
        public Connection getConnection(String u, String p) {
            throw new UnsupportedOperationException();
        }

        @Override
        public PrintWriter getLogWriter() {
            return null;
        }

        @Override
        public void setLogWriter(PrintWriter out) {}

        @Override
        public void setLoginTimeout(int seconds) {}

        @Override
        public int getLoginTimeout() {
            return 0;
        }

        @Override
        public Logger getParentLogger() {
            return Logger.getGlobal();
        }

        @Override
        public <T> T unwrap(Class<T> iface) {
            throw new UnsupportedOperationException();
        }

        @Override
        public boolean isWrapperFor(Class<?> iface) {
            return false;
        }
    };

    private static IdempotentConsumer.Builder valid(Map<String, Object> kafka) {
        return IdempotentConsumer.builder()
                .kafkaProperties(kafka)
                .topics("orders")
                .consumerName("payments")
                .dataSource(NO_DATABASE)
                .handler((m, tx) -> {});
    }

    private static Map<String, Object> kafka(UnaryOperator<Map<String, Object>> change) {
        Map<String, Object> props =
                new HashMap<>(Map.of("bootstrap.servers", "localhost:9092", "group.id", "payments"));
        return change.apply(props);
    }

    @Test
    void requiresBootstrapServersAndGroupId() {
        assertThatThrownBy(() -> valid(kafka(p -> {
                            p.remove("group.id");
                            return p;
                        }))
                        .build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("group.id");
        assertThatThrownBy(() -> valid(kafka(p -> {
                            p.put("group.id", " ");
                            return p;
                        }))
                        .build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("group.id");
        assertThatThrownBy(() -> valid(kafka(p -> {
                            p.remove("bootstrap.servers");
                            return p;
                        }))
                        .build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("bootstrap.servers");
    }

    @Test
    void refusesAutoCommit() {
        assertThatThrownBy(() -> valid(kafka(p -> {
                            p.put("enable.auto.commit", "true");
                            return p;
                        }))
                        .build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("Invalid value true for configuration enable.auto.commit")
                .hasMessageContaining("set it to false");
        assertThatThrownBy(() -> valid(kafka(p -> {
                            p.put("enable.auto.commit", true);
                            return p;
                        }))
                        .build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("enable.auto.commit");
    }

    @Test
    void refusesOtherDeserializers() {
        assertThatThrownBy(() -> valid(kafka(p -> {
                            p.put("value.deserializer", "org.apache.kafka.common.serialization.StringDeserializer");
                            return p;
                        }))
                        .build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("value.deserializer");
    }

    @Test
    void consumerNameIsRequiredAndBounded() {
        assertThatThrownBy(() -> IdempotentConsumer.builder().consumerName(""))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("consumerName");
        assertThatThrownBy(() -> IdempotentConsumer.builder().consumerName("  "))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("consumerName");
        assertThatThrownBy(() -> IdempotentConsumer.builder().consumerName("x".repeat(201)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("consumerName")
                .hasMessageContaining("201");
        assertThatThrownBy(() -> IdempotentConsumer.builder().consumerName(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("consumerName");
        assertThatThrownBy(() -> IdempotentConsumer.builder()
                        .kafkaProperties(kafka(p -> p))
                        .topics("t")
                        .dataSource(NO_DATABASE)
                        .handler((m, tx) -> {})
                        .build())
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("consumerName");
    }

    @Test
    void requiresTopicsHandlerAndOneDatabase() {
        assertThatThrownBy(() -> IdempotentConsumer.builder()
                        .kafkaProperties(kafka(p -> p))
                        .consumerName("c")
                        .dataSource(NO_DATABASE)
                        .handler((m, tx) -> {})
                        .build())
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("topics");
        assertThatThrownBy(() -> IdempotentConsumer.builder()
                        .kafkaProperties(kafka(p -> p))
                        .consumerName("c")
                        .topics("t")
                        .dataSource(NO_DATABASE)
                        .build())
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("handler");
        assertThatThrownBy(() -> IdempotentConsumer.builder()
                        .kafkaProperties(kafka(p -> p))
                        .consumerName("c")
                        .topics("t")
                        .handler((m, tx) -> {})
                        .build())
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("dataSource");
        assertThatThrownBy(() -> valid(kafka(p -> p))
                        .dsl(DSL.using(NO_DATABASE, SQLDialect.POSTGRES))
                        .build())
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("both");
        // workers run in parallel, each with its own transaction: a context over one connection would mix them
        Connection single = (Connection) Proxy.newProxyInstance(
                Connection.class.getClassLoader(), new Class<?>[] {Connection.class}, (p, m, args) -> {
                    throw new UnsupportedOperationException();
                });
        assertThatThrownBy(() -> IdempotentConsumer.builder().dsl(DSL.using(single, SQLDialect.POSTGRES)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("one connection")
                .hasMessageContaining("DSL.using(dataSource");
        assertThatThrownBy(() -> IdempotentConsumer.builder().dsl(DSL.using(SQLDialect.POSTGRES)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("without a connection");
        assertThatThrownBy(() -> IdempotentConsumer.builder().topics("ok", " "))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("topics");
    }

    @Test
    void rejectsOutOfRangeNumbersAndDurations() {
        var b = IdempotentConsumer.builder();
        assertThatThrownBy(() -> b.maxAttempts(0))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("maxAttempts")
                .hasMessageContaining("got 0");
        assertThatThrownBy(() -> b.maxRecordsPerTransaction(0))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("maxRecordsPerTransaction");
        assertThatThrownBy(() -> b.maxRecordsPerTransaction(1001))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("maxRecordsPerTransaction");
        assertThatThrownBy(() -> b.concurrency(0))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("concurrency");
        assertThatThrownBy(() -> b.maxBufferedBytes(0))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("maxBufferedBytes must be positive, got 0")
                .hasMessageContaining("leave it unset");
        assertThatThrownBy(() -> b.maxBufferedBytes(-1))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("maxBufferedBytes");
        assertThatThrownBy(() -> b.retention(Duration.ofMinutes(59)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("retention")
                .hasMessageContaining("59m")
                .hasMessageContaining("redelivery");
        assertThatThrownBy(() -> b.purgeInterval(Duration.ofMillis(10)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("purgeInterval");
        assertThatThrownBy(() -> b.closeTimeout(Duration.ZERO))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("closeTimeout");
        assertThatThrownBy(() -> b.schema("Bad-Schema"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("schema");
        assertThatThrownBy(() -> b.deadLetterTopic(" "))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("deadLetterTopic");
        assertThatThrownBy(() -> b.backoff(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("backoff");
        assertThatThrownBy(() -> b.handler(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("handler");
    }

    /** Issue 12 item 3: a dead-letter producer that could lose a record after its offset moved on is refused. */
    @Test
    void deadLetterProducerNeedsAcksAllAndABoundedBlock() {
        for (String acks : new String[] {"0", "1"}) {
            assertThatThrownBy(() -> valid(kafka(p -> p))
                            .producerProperties(Map.of("acks", acks))
                            .build())
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("Invalid value " + acks + " for configuration acks")
                    .hasMessageContaining("acks=all");
        }
        valid(kafka(p -> p)).producerProperties(Map.of("acks", "-1")).build().close();
        valid(kafka(p -> p)).producerProperties(Map.of("acks", "all")).build().close();
        assertThatThrownBy(() -> valid(kafka(p -> p))
                        .closeTimeout(Duration.ofSeconds(10))
                        .producerProperties(Map.of("max.block.ms", "60000"))
                        .build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("max.block.ms")
                .hasMessageContaining("closeTimeout (10s)");
    }

    /**
     * The dead-letter producer never calls initTransactions(): with a transactional.id every dead-letter
     * send would throw IllegalStateException, retried for ever with the record's partition held. Refused
     * at build, naming the property and why.
     */
    @Test
    void deadLetterProducerRefusesATransactionalId() {
        assertThatThrownBy(() -> valid(kafka(p -> p))
                        .producerProperties(Map.of("transactional.id", "payments-dlt"))
                        .build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("transactional.id=payments-dlt in producerProperties")
                .hasMessageContaining("never calls initTransactions()")
                .hasMessageContaining("remove it");
        assertThatThrownBy(() -> valid(kafka(p -> p))
                        .producerProperties(Map.of("transactional.id", ""))
                        .build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("transactional.id");
        valid(kafka(p -> p))
                .producerProperties(Map.of("enable.idempotence", "true"))
                .build()
                .close();
    }

    /**
     * A revocation waits up to closeTimeout twice inside a poll (transactions in flight, then the offset
     * commit), and the poll loop's own offset commit of the partitions kept can follow it, up to
     * closeTimeout again, before the next poll: a max.poll.interval.ms that does not leave room for the
     * three is refused at build.
     */
    @Test
    void closeTimeoutMustFitThreeTimesInTheMaxPollInterval() {
        assertThatThrownBy(() ->
                        valid(kafka(p -> p)).closeTimeout(Duration.ofMinutes(3)).build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining(
                        "max.poll.interval.ms (5m, Kafka's default) must be above three times closeTimeout (3m, so"
                                + " above 9m)")
                .hasMessageContaining("lower closeTimeout(...) or raise max.poll.interval.ms");
        // room for twice closeTimeout, not three times
        assertThatThrownBy(() -> valid(kafka(p -> p))
                        .closeTimeout(Duration.ofSeconds(100))
                        .build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("must be above three times closeTimeout (1m40s, so above 5m)");
        assertThatThrownBy(() -> valid(kafka(p -> {
                            p.put("max.poll.interval.ms", "60001");
                            return p;
                        }))
                        .closeTimeout(Duration.ofSeconds(30))
                        .build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("max.poll.interval.ms (1m1ms) must be above three times closeTimeout");
        assertThatThrownBy(() -> valid(kafka(p -> {
                            p.put("max.poll.interval.ms", 60_000);
                            return p;
                        }))
                        .closeTimeout(Duration.ofSeconds(30))
                        .build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("max.poll.interval.ms (1m) must be above three times closeTimeout (30s");
        assertThatThrownBy(() -> valid(kafka(p -> {
                            p.put("max.poll.interval.ms", "soon");
                            return p;
                        }))
                        .build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("Invalid value soon for configuration max.poll.interval.ms");
        assertThatThrownBy(() -> valid(kafka(p -> {
                            p.put("max.poll.interval.ms", 0);
                            return p;
                        }))
                        .build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("Invalid value 0 for configuration max.poll.interval.ms")
                .hasMessageContaining("at least 1");
        valid(kafka(p -> {
                    p.put("max.poll.interval.ms", "90001");
                    return p;
                }))
                .closeTimeout(Duration.ofSeconds(30))
                .build()
                .close();
        valid(kafka(p -> p)).closeTimeout(Duration.ofSeconds(99)).build().close();
    }

    /** Dead-letter topic names: Spring's suffix is accepted; a name Kafka would refuse fails at build. */
    @Test
    void deadLetterTopicNamesAreValidated() {
        valid(kafka(p -> p))
                .deadLetterTopicSuffix(IdempotentConsumer.Builder.SPRING_DEAD_LETTER_SUFFIX)
                .build()
                .close();
        assertThatThrownBy(() -> IdempotentConsumer.builder().deadLetterTopicSuffix(""))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("deadLetterTopicSuffix");
        assertThatThrownBy(() -> IdempotentConsumer.builder().deadLetterTopicSuffix("/dlt"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("deadLetterTopicSuffix");
        assertThatThrownBy(() -> valid(kafka(p -> p)).topics("t".repeat(246)).build())
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("not a valid Kafka topic name")
                .hasMessageContaining("deadLetterTopic");
    }

    @Test
    void purgeRefusesAgesBelowOneHour() {
        try (IdempotentConsumer consumer = valid(kafka(p -> p)).build()) {
            assertThatThrownBy(() -> consumer.purgeProcessed(Duration.ofMinutes(5)))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("olderThan");
        }
    }

    /**
     * A retention past 292 years does not fit the nanoseconds and milliseconds ages are computed in: the
     * staleness check of every transaction and the purge threw ArithmeticException, the batch rolled
     * back and was retried for ever. Retentions above 100 years (keeping ids for ever) are refused with
     * what to give instead, and so are purge ages above it; 100 years itself is accepted.
     */
    @Test
    void retentionAndPurgeAgesAreAtMostOneHundredYears() {
        for (Duration tooLong : new Duration[] {ChronoUnit.FOREVER.getDuration(), Duration.ofDays(300 * 366)}) {
            assertThatThrownBy(() -> IdempotentConsumer.builder().retention(tooLong))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("retention must be at most 36525d (100 years), got ")
                    .hasMessageContaining("to keep them for ever, give IdempotentConsumer.Builder.MAX_RETENTION");
        }
        assertThatThrownBy(() -> IdempotentConsumer.builder().retention(Duration.ofDays(36_526)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("got 36526d");
        try (IdempotentConsumer consumer = valid(kafka(p -> p))
                .retention(IdempotentConsumer.Builder.MAX_RETENTION)
                .build()) {
            assertThatThrownBy(() -> consumer.purgeProcessed(ChronoUnit.FOREVER.getDuration()))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("olderThan must be at most 36525d (100 years)");
            assertThatThrownBy(() -> consumer.purgeProcessed(Duration.ofDays(300 * 366)))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("olderThan must be at most 36525d (100 years)");
        }
    }

    /**
     * maxTransientRetry(FOREVER) overflowed the nanoseconds it is compared in at the first transient
     * failure. It is bounded at 7 days, Kafka's default topic retention, past which the records queued
     * behind the failing one can be deleted unconsumed; 7 days itself is accepted.
     */
    @Test
    void maxTransientRetryIsAtMostSevenDays() {
        for (Duration tooLong : new Duration[] {
            ChronoUnit.FOREVER.getDuration(), Duration.ofDays(7).plusMillis(1)
        }) {
            assertThatThrownBy(() -> IdempotentConsumer.builder().maxTransientRetry(tooLong))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("maxTransientRetry must be at most 7d, got ")
                    .hasMessageContaining("retention.ms");
        }
        valid(kafka(p -> p))
                .maxTransientRetry(IdempotentConsumer.Builder.MAX_TRANSIENT_RETRY)
                .build()
                .close();
    }

    /**
     * A dead-letter topic that is also a source topic sent a record without a usable message id back
     * onto the topic it came from, to be read and dead-lettered again, for ever: build() refuses it,
     * naming both.
     */
    @Test
    void deadLetterTopicMayNotBeASourceTopic() {
        assertThatThrownBy(() -> valid(kafka(p -> p))
                        .topics("invoices")
                        .deadLetterTopic("invoices")
                        .build())
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("deadLetterTopic \"invoices\" is also one of topics [orders, invoices]")
                .hasMessageContaining("set deadLetterTopic(...) to another topic, e.g. \"invoices.dlt\"");
        valid(kafka(p -> p)).deadLetterTopic("orders.failed").build().close();
    }

    /**
     * A source topic Kafka would refuse failed late and misleadingly: build() blamed its dead-letter
     * topic ("orders v2.dlt"), or, with an explicit deadLetterTopic, it passed and failed in the poll
     * thread. topics(...) now refuses it at once, naming the topic.
     */
    @Test
    void sourceTopicNamesAreValidated() {
        for (String bad : new String[] {"orders v2", ".", "..", "t".repeat(250), "orders/v2", ""}) {
            assertThatThrownBy(() -> IdempotentConsumer.builder().topics("ok", bad))
                    .as(bad)
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("topics may contain only valid Kafka topic names")
                    .hasMessageContaining("got \"" + bad + "\"");
        }
        assertThatThrownBy(() -> IdempotentConsumer.builder().topics(List.of("orders v2")))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("\"orders v2\"");
        valid(kafka(p -> p))
                .topics("t".repeat(249), "orders_v2-EU.1")
                .deadLetterTopic("dead-letters")
                .build()
                .close();
    }

    /**
     * "payments\n" (an environment variable with a trailing newline) was accepted as another dedup scope
     * than "payments" (messages applied twice across instances); whitespace at either end and control
     * characters are refused, with the name shown with its control characters escaped.
     */
    @Test
    void consumerNameRefusesSurroundingWhitespaceAndControlCharacters() {
        for (String bad : new String[] {" payments", "payments\n", "payments ", "\tpayments"}) {
            assertThatThrownBy(() -> IdempotentConsumer.builder().consumerName(bad))
                    .as(bad)
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("consumerName may not start or end with whitespace")
                    .hasMessageContaining("apart from \"payments\"");
        }
        assertThatThrownBy(() -> IdempotentConsumer.builder().consumerName("payments\n"))
                .hasMessageContaining("got \"payments\\u000A\"");
        for (String bad : new String[] {"pay\nments", "pay\u0000ments", "pay\u007Fments", "pay\u0085ments"}) {
            assertThatThrownBy(() -> IdempotentConsumer.builder().consumerName(bad))
                    .as(bad)
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("consumerName may not contain control characters")
                    .hasMessageContaining("at index 3");
        }
        IdempotentConsumer.builder().consumerName("payments service");
    }

    /**
     * closeTimeout(Duration.ofNanos(1)) was accepted: in milliseconds it is 0, so the dead-letter
     * producer got max.block.ms=0 and close() waited for the poll thread with join(0), for ever.
     * closeTimeout(FOREVER) made build() throw ArithmeticException. Both ends are refused with the
     * bounds, 1 s and 1 day.
     */
    @Test
    void closeTimeoutIsBetweenOneSecondAndOneDay() {
        for (Duration bad : new Duration[] {
            Duration.ofNanos(1),
            Duration.ofMillis(999),
            ChronoUnit.FOREVER.getDuration(),
            Duration.ofDays(1).plusNanos(1)
        }) {
            assertThatThrownBy(() -> IdempotentConsumer.builder().closeTimeout(bad))
                    .as(bad.toString())
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("closeTimeout must be between 1s and 1d, got ");
        }
        valid(kafka(p -> p))
                .closeTimeout(IdempotentConsumer.Builder.MIN_CLOSE_TIMEOUT)
                .build()
                .close();
        IdempotentConsumer.builder().closeTimeout(IdempotentConsumer.Builder.MAX_CLOSE_TIMEOUT);
    }

    /**
     * isolation.level=read_uncommitted in kafkaProperties is honoured (someone may mean it), but it was
     * silent: the handler then gets records of aborted Kafka transactions, out of the relay's order. The
     * build logs a WARN naming the property and what it breaks; the default logs none.
     */
    @Test
    void readUncommittedIsolationIsWarnedAbout() {
        var logger = ((LoggerContext) LoggerFactory.getILoggerFactory()).getLogger(IdempotentConsumer.class);
        ListAppender<ILoggingEvent> appender = new ListAppender<>();
        appender.start();
        logger.addAppender(appender);
        try {
            valid(kafka(p -> p)).build().close();
            assertThat(warnings(appender)).noneMatch(m -> m.contains("isolation.level"));
            valid(kafka(p -> {
                        p.put("isolation.level", "read_uncommitted");
                        return p;
                    }))
                    .build()
                    .close();
            assertThat(warnings(appender))
                    .anySatisfy(m -> assertThat(m)
                            .contains("isolation.level=read_uncommitted in kafkaProperties")
                            .contains("records of aborted Kafka transactions")
                            .contains("breaks per-key order")
                            .contains("remove it"));
        } finally {
            logger.detachAppender(appender);
        }
    }

    /**
     * A Kafka property the client refuses at construction (a value it cannot parse, a bootstrap address
     * that does not resolve) fails build() with an IllegalArgumentException naming the client's reason,
     * as the README says of bad configuration, and registers no meter. Before, Kafka's own ConfigException
     * or KafkaException came out of build(), after the consumer's meters had been registered for an
     * instance that never existed.
     */
    @Test
    void aKafkaPropertyTheClientRefusesFailsTheBuildNamingItAndRegistersNothing() {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        assertThatThrownBy(() -> valid(kafka(p -> {
                            p.put("max.poll.records", "abc");
                            return p;
                        }))
                        .meterRegistry(registry)
                        .build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("the Kafka consumer could not be created")
                .hasMessageContaining("max.poll.records");
        assertThatThrownBy(() -> valid(kafka(p -> {
                            p.put("bootstrap.servers", "no-such-host.invalid:9092");
                            return p;
                        }))
                        .meterRegistry(registry)
                        .build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("bootstrap");
        assertThat(registry.getMeters()).isEmpty();
    }

    private static List<String> warnings(ListAppender<ILoggingEvent> appender) {
        return appender.list.stream()
                .filter(e -> e.getLevel() == Level.WARN)
                .map(ILoggingEvent::getFormattedMessage)
                .toList();
    }
}
