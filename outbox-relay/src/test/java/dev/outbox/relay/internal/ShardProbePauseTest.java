package dev.outbox.relay.internal;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The probe's pause after a read that found rows ({@link ShardProbe#pauseAfter}): decision logic only. */
class ShardProbePauseTest {
    private static final long INTERVAL = TimeUnit.MILLISECONDS.toNanos(5);
    private static final long UNDER_LOAD = TimeUnit.MILLISECONDS.toNanos(10);

    private static long pauseMillis(long sinceMillis, int shards, int rows) {
        return TimeUnit.NANOSECONDS.toMillis(
                ShardProbe.pauseAfter(TimeUnit.MILLISECONDS.toNanos(sinceMillis), shards, rows, INTERVAL, UNDER_LOAD));
    }

    @Test
    void aReadThatFoundARowPerShardKeepsTheProbeInterval() {
        assertThat(pauseMillis(5, 64, 64)).isEqualTo(5);
        assertThat(pauseMillis(5, 64, 500)).isEqualTo(5);
    }

    @Test
    void fewerRowsThanShardsLengthenThePauseUntilAboutOneRowPerShardShouldHaveArrived() {
        // 40 rows in 5 ms for 64 shards: 64 rows take 8 ms at that rate
        assertThat(pauseMillis(5, 64, 40)).isEqualTo(8);
        // a relay that owns 8 shards needs only 8 rows per read
        assertThat(pauseMillis(5, 8, 8)).isEqualTo(5);
    }

    @Test
    void thePauseStaysWithinTheIntervalUnderLoad() {
        assertThat(pauseMillis(5, 64, 1)).isEqualTo(10);
        // the first read after a long idle wait
        assertThat(pauseMillis(3_600_000, 4_096, 1)).isEqualTo(10);
        assertThat(pauseMillis(1, 1, 1_000)).isEqualTo(5);
    }
}
