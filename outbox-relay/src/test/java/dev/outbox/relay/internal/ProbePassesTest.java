package dev.outbox.relay.internal;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/**
 * Where the probe's ticks start reading a shard (G1: a row that commits late below the last row read
 * is still found, by the next window or full pass).
 */
class ProbePassesTest {
    @Test
    void mostTicksReadAboveTheLastRowReadWindowAndFullPassesReadBelowIt() {
        long mark = 1_000_000;
        int fast = 0;
        int window = 0;
        int full = 0;
        for (long tick = 0; tick < 2 * ShardProbe.FULL_PASS_EVERY; tick++) {
            long above = ShardProbe.readAbove(tick, mark);
            if (above == Long.MIN_VALUE) {
                full++;
            } else if (above == mark - ShardProbe.LATE_WINDOW) {
                window++;
            } else {
                assertThat(above).isEqualTo(mark);
                fast++;
            }
        }
        // a full pass every FULL_PASS_EVERY ticks, starting with the first
        assertThat(full).isEqualTo(2);
        assertThat(ShardProbe.readAbove(0, mark)).isEqualTo(Long.MIN_VALUE);
        // a window pass on every other tick that is a multiple of WINDOW_PASS_EVERY
        assertThat(window).isEqualTo(2 * ShardProbe.FULL_PASS_EVERY / ShardProbe.WINDOW_PASS_EVERY - 2);
        assertThat(fast).isEqualTo(2 * ShardProbe.FULL_PASS_EVERY - full - window);
    }

    @Test
    void aShardThatReadNothingYetIsReadFromItsFirstRow() {
        for (long tick = 0; tick < 20; tick++) {
            assertThat(ShardProbe.readAbove(tick, Long.MIN_VALUE)).isEqualTo(Long.MIN_VALUE);
        }
    }

    @Test
    void theWindowCanReachBelowTheFirstId() {
        assertThat(ShardProbe.readAbove(ShardProbe.WINDOW_PASS_EVERY, 5)).isEqualTo(5 - ShardProbe.LATE_WINDOW);
    }
}
