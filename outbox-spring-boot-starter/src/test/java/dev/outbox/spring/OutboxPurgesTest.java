package dev.outbox.spring;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import dev.outbox.spring.internal.OutboxPurges;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.sql.SQLException;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/** The purge thread: its schedule, its counters, and what a failed purge does. */
class OutboxPurgesTest {
    private final MeterRegistry registry = new SimpleMeterRegistry();
    private final ListAppender<ILoggingEvent> log = new ListAppender<>();
    private final Logger logger = (Logger) LoggerFactory.getLogger(OutboxPurges.class);

    @BeforeEach
    void captureTheLog() {
        log.start();
        logger.addAppender(log);
    }

    @AfterEach
    void releaseTheLog() {
        logger.detachAppender(log);
    }

    /**
     * A failed purge, an exception or an Error other than a VM error, is counted and warned about
     * once a minute, and the schedule goes on: before, an Error ended the schedule without a word and
     * the tables grew.
     */
    @Test
    void aFailedPurgeIsCountedAndWarnedOnceAMinuteAndTheScheduleGoesOn() {
        AtomicInteger runs = new AtomicInteger();
        OutboxPurges.Purge purge = new OutboxPurges.Purge("test_rows", Duration.ofSeconds(1), registry, () -> {
            int run = runs.incrementAndGet();
            if (run == 1) {
                throw new SQLException("connection refused", "08001");
            }
            if (run == 2) {
                throw new NoClassDefFoundError("org/postgresql/util/PSQLState");
            }
            return 3;
        });
        OutboxPurges purges = new OutboxPurges(List.of(purge));
        purges.start();
        try {
            assertThat(purges.isRunning()).isTrue();
            await().atMost(Duration.ofSeconds(20))
                    .untilAsserted(() -> assertThat(runs.get())
                            .as("the schedule goes on after an exception and an Error")
                            .isGreaterThanOrEqualTo(3));
            await().atMost(Duration.ofSeconds(5))
                    .untilAsserted(
                            () -> assertThat(counter(OutboxPurges.DELETED)).isGreaterThanOrEqualTo(3));
        } finally {
            purges.stop();
        }
        assertThat(counter(OutboxPurges.FAILURES)).isEqualTo(2);
        List<ILoggingEvent> warnings =
                log.list.stream().filter(e -> e.getLevel() == Level.WARN).toList();
        assertThat(warnings).as("one warning for two failures within a minute").hasSize(1);
        assertThat(warnings.get(0).getFormattedMessage()).contains("purge of test_rows failed");
        assertThat(warnings.get(0).getThrowableProxy().getMessage()).isEqualTo("connection refused");
    }

    @Test
    void noPurgeRunsAfterStop() {
        AtomicInteger runs = new AtomicInteger();
        OutboxPurges purges = new OutboxPurges(List.of(
                new OutboxPurges.Purge("test_rows", Duration.ofSeconds(1), registry, () -> runs.incrementAndGet())));
        purges.start();
        await().atMost(Duration.ofSeconds(20)).until(() -> runs.get() >= 1);
        purges.stop();
        assertThat(purges.isRunning()).isFalse();
        int after = runs.get();
        await().during(Duration.ofMillis(1500)).atMost(Duration.ofSeconds(3)).until(() -> runs.get() == after);
    }

    @Test
    void anIntervalOfZeroSchedulesNothingAndABadOneIsRefused() {
        AtomicInteger runs = new AtomicInteger();
        OutboxPurges purges = new OutboxPurges(
                List.of(new OutboxPurges.Purge("test_rows", Duration.ZERO, registry, () -> runs.incrementAndGet())));
        purges.start();
        assertThat(purges.isRunning()).isTrue();
        purges.stop();
        assertThat(runs.get()).isZero();
        assertThatThrownBy(() -> OutboxPurges.requireInterval(Duration.ofMillis(500)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("purgeInterval must be zero (off) or at least 1s, got 500ms");
        assertThatThrownBy(() -> OutboxPurges.requireInterval(Duration.ofSeconds(-1)))
                .isInstanceOf(IllegalArgumentException.class);
    }

    private double counter(String name) {
        return registry.find(name).tag("kind", "test_rows").counter().count();
    }
}
