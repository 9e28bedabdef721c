package dev.outbox.relay.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/**
 * F1 (Kafka-side fencing), decision logic: the local lease deadline and the producer timeouts it
 * bounds. The end-to-end proof against real PostgreSQL and Kafka is {@code ZombieRelayIT}.
 */
class LeaseBoundsTest {
    private static Map<String, Object> producer(Map<String, ?> given) {
        Map<String, Object> p = new HashMap<>(given);
        p.put("bootstrap.servers", "localhost:9092");
        return ProducerSettings.validate(p, "r-1");
    }

    @Test
    void theDeadlineIsTheClaimStartPlusTheLeaseMinusAThirdAndOnlyMovesForward() {
        FakeTime time = new FakeTime();
        long start = time.nanoTime();
        LeaseClock clock = new LeaseClock(Duration.ofSeconds(30), start, time);
        assertThat(clock.remainingNanos()).isEqualTo(Duration.ofSeconds(20).toNanos());

        time.advance(Duration.ofSeconds(20).minusNanos(1));
        assertThat(clock.mayPublish()).isTrue();
        time.advance(Duration.ofNanos(1));
        assertThat(clock.mayPublish())
                .as("20 s after the claim started: another relay may claim it 10 s later")
                .isFalse();

        clock.renewed(start - Duration.ofSeconds(5).toNanos()); // an older renewal cannot move it back
        assertThat(clock.remainingNanos()).isZero();
        assertThat(clock.mayPublish()).isFalse();

        clock.renewed(time.nanoTime());
        assertThat(clock.mayPublish()).as("renewed").isTrue();
        assertThat(clock.remainingNanos()).isEqualTo(Duration.ofSeconds(20).toNanos());
    }

    @Test
    void producerTimeoutsDefaultToHalfTheMargin() {
        Map<String, Object> p = ProducerSettings.boundByLease(producer(Map.of()), Duration.ofSeconds(30));
        assertThat(p).containsEntry("delivery.timeout.ms", "5000").containsEntry("request.timeout.ms", "5000");
        Map<String, Object> shortLease =
                ProducerSettings.boundByLease(producer(Map.of("linger.ms", "5")), Duration.ofSeconds(3));
        assertThat(shortLease).containsEntry("delivery.timeout.ms", "500").containsEntry("request.timeout.ms", "495");
    }

    @Test
    void aDeliveryTimeoutBeyondTheMarginIsRefusedByName() {
        assertThatThrownBy(() -> ProducerSettings.boundByLease(
                        producer(Map.of("delivery.timeout.ms", "30000")), Duration.ofSeconds(30)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("delivery.timeout.ms (30000) may not exceed the lease's safety margin")
                .hasMessageContaining("10s of 30s");
        assertThatThrownBy(() -> ProducerSettings.boundByLease(
                        producer(Map.of("delivery.timeout.ms", "8000", "request.timeout.ms", "9000")),
                        Duration.ofSeconds(30)))
                .hasMessageContaining("request.timeout.ms (9000)");
        assertThat(bounded(Map.of("delivery.timeout.ms", 8_000), Duration.ofSeconds(30)))
                .containsEntry("delivery.timeout.ms", "8000")
                .containsEntry("request.timeout.ms", "8000")
                .containsEntry("max.block.ms", "2000");
        assertThat(bounded(Map.of("delivery.timeout.ms", 10_000), Duration.ofSeconds(30)))
                .containsEntry("delivery.timeout.ms", "10000")
                .containsEntry("request.timeout.ms", "10000")
                .as("the least max.block.ms when the delivery timeout takes the whole margin")
                .containsEntry("max.block.ms", "100");
    }

    /**
     * G3 fencing on the Kafka side: {@code send()} can wait {@code max.block.ms} for buffer memory or
     * metadata after the lease check, and the record's delivery timeout starts only after that wait,
     * so the two together must fit in the margin. Before, the default 10 s wait plus the 5 s delivery
     * timeout let a record reach Kafka up to 5 s after {@code lease_until}, when another relay may
     * already have published newer messages of its key. A given {@code max.block.ms} that does not
     * fit is kept and logged at WARN.
     */
    @Test
    void sendsBlockingWaitAndTheDeliveryTimeoutFitInTheMarginTogether() {
        Map<String, Object> p = bounded(Map.of(), Duration.ofSeconds(30));
        long margin = LeaseClock.margin(Duration.ofSeconds(30)).toMillis();
        assertThat(Long.parseLong((String) p.get("max.block.ms"))
                        + Long.parseLong((String) p.get("delivery.timeout.ms")))
                .isLessThanOrEqualTo(margin);
        assertThat(p).containsEntry("max.block.ms", "5000");
        assertThat(bounded(Map.of(), Duration.ofMinutes(2)))
                .as("at most 10 s however long the lease")
                .containsEntry("max.block.ms", "10000");
        assertThat(bounded(Map.of("max.block.ms", "3000"), Duration.ofSeconds(30)))
                .containsEntry("max.block.ms", "3000");
        Logger logger = (Logger) LoggerFactory.getLogger(ProducerSettings.class);
        ListAppender<ILoggingEvent> events = new ListAppender<>();
        events.start();
        logger.addAppender(events);
        try {
            bounded(Map.of("max.block.ms", "4000"), Duration.ofSeconds(30));
            assertThat(events.list).as("a given value that fits").isEmpty();
            assertThat(bounded(Map.of("max.block.ms", "60000"), Duration.ofSeconds(30)))
                    .as("a given value is kept")
                    .containsEntry("max.block.ms", "60000");
            assertThat(events.list).singleElement().satisfies(e -> {
                assertThat(e.getLevel()).isEqualTo(Level.WARN);
                assertThat(e.getFormattedMessage())
                        .startsWith("producer property max.block.ms (60000) plus delivery.timeout.ms (5000)"
                                + " exceeds the lease's safety margin, a third of the lease duration (10s of"
                                + " 30s)");
            });
            events.list.clear();
            Map<String, Object> transactional = ProducerSettings.boundSendWait(
                    ProducerSettings.boundByLease(producer(Map.of()), Duration.ofSeconds(6)),
                    Duration.ofSeconds(6),
                    true);
            assertThat(transactional)
                    .as("the transactional mode: the broker fences, and max.block.ms also bounds commitTransaction()")
                    .containsEntry("max.block.ms", "10000");
            ProducerSettings.boundSendWait(
                    ProducerSettings.boundByLease(producer(Map.of("max.block.ms", "60000")), Duration.ofSeconds(30)),
                    Duration.ofSeconds(30),
                    true);
            assertThat(events.list).as("no warning in the transactional mode").isEmpty();
        } finally {
            logger.detachAppender(events);
        }
    }

    private static Map<String, Object> bounded(Map<String, ?> given, Duration lease) {
        return ProducerSettings.boundSendWait(ProducerSettings.boundByLease(producer(given), lease), lease, false);
    }

    @Test
    void propertiesThatRemapKeysOrPartitionsAreRefusedByName() {
        for (String name : new String[] {"partitioner.class", "partitioner.ignore.keys", "interceptor.classes"}) {
            assertThatThrownBy(() -> producer(Map.of(name, "x")))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageStartingWith("producer property " + name + " is not supported");
        }
    }

    @Test
    void malformedRowDataIsPoison() {
        assertThat(Errors.isPoison(new Errors.MalformedRow("headers", new IllegalArgumentException())))
                .isTrue();
    }
}
