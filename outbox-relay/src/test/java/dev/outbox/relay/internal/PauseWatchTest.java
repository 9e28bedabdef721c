package dev.outbox.relay.internal;

import static org.assertj.core.api.Assertions.assertThat;

import dev.outbox.core.internal.PrefixedLog;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/** When {@link PauseWatch} counts a gap between its ticks as a pause of the process, without its thread. */
class PauseWatchTest {
    private final FakeTime time = new FakeTime();
    // not started: the test tells it the gaps
    private final PauseWatch watch = new PauseWatch(
            time, new PrefixedLog(LoggerFactory.getLogger(PauseWatchTest.class), "relay[test]"), r -> new Thread(r));

    @Test
    void aGapOfMoreThanATickAndASecondIsAPauseThatEndedAfterWhatWasInFlight() {
        long sent = time.nanoTime();
        time.advance(Duration.ofMillis(50));
        long last = time.nanoTime();
        time.advance(PauseWatch.TICK.plus(PauseWatch.PAUSE));
        watch.noticed(last, time.nanoTime());
        assertThat(watch.pausedSince(sent))
                .as("a gap of a tick and a second exactly")
                .isFalse();

        time.advance(Duration.ofMillis(1));
        long tick = time.nanoTime();
        time.advance(PauseWatch.TICK.plus(PauseWatch.PAUSE).plusMillis(1));
        watch.noticed(tick, time.nanoTime());
        assertThat(watch.pausedSince(sent)).as("sent before the pause ended").isTrue();
        assertThat(watch.pausedSince(time.nanoTime())).as("sent as it ended").isFalse();
    }

    /**
     * After a pause the failures of the batches in flight may be judged before the watch wakes to record
     * it: its tick overdue by more than a pause counts as one already.
     */
    @Test
    void aTickOverdueByMoreThanAPauseIsAPauseNotRecordedYet() {
        long sent = time.nanoTime();
        time.advance(PauseWatch.TICK.plus(PauseWatch.PAUSE));
        assertThat(watch.pausedSince(sent)).as("overdue by a pause exactly").isFalse();
        time.advance(Duration.ofMillis(1));
        assertThat(watch.pausedSince(sent)).as("overdue by more").isTrue();
        long tick = time.nanoTime();
        watch.noticed(tick, tick);
        assertThat(watch.pausedSince(tick)).as("the watch awake again").isFalse();
    }
}
