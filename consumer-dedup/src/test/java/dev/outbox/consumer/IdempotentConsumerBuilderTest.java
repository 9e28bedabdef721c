package dev.outbox.consumer;

import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.PrintWriter;
import java.lang.reflect.Proxy;
import java.sql.Connection;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.function.UnaryOperator;
import java.util.logging.Logger;
import javax.sql.DataSource;
import org.jooq.SQLDialect;
import org.jooq.impl.DSL;
import org.junit.jupiter.api.Test;

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
}
