package dev.outbox.core.internal;

import java.time.Clock;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;

/**
 * The clocks of an engine, as one collaborator handed in through its constructor, so that tests can
 * move time themselves: a monotonic one for deadlines, delays and durations, the wall clock for
 * timestamps and the age of records. Production wiring uses {@link #SYSTEM}. Not part of the public
 * API.
 */
public interface TimeSource {
    /** The system's clocks: {@link System#nanoTime()} and {@link System#currentTimeMillis()}. */
    TimeSource SYSTEM = new TimeSource() {
        @Override
        public long nanoTime() {
            return System.nanoTime();
        }

        @Override
        public long currentTimeMillis() {
            return System.currentTimeMillis();
        }
    };

    /** @return a monotonic time in nanoseconds, as {@link System#nanoTime()}: only differences mean anything */
    long nanoTime();

    /** @return the wall-clock time in epoch milliseconds, as {@link System#currentTimeMillis()} */
    long currentTimeMillis();

    /**
     * @return a {@link Clock} for libraries that take one (a circuit breaker's open-state wait): its
     *     instants follow the monotonic clock, so that the wait passes when this source's time does
     */
    default Clock clock() {
        TimeSource source = this;
        long origin = source.currentTimeMillis() * 1_000_000 - source.nanoTime();
        return new Clock() {
            @Override
            public ZoneId getZone() {
                return ZoneOffset.UTC;
            }

            @Override
            public Clock withZone(ZoneId zone) {
                throw new UnsupportedOperationException("a time source's clock is UTC only");
            }

            @Override
            public Instant instant() {
                long nanos = origin + source.nanoTime();
                return Instant.ofEpochSecond(
                        Math.floorDiv(nanos, 1_000_000_000L), Math.floorMod(nanos, 1_000_000_000L));
            }
        };
    }
}
