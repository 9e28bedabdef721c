package dev.outbox.consumer.internal;

/**
 * The consumer's clocks, as one collaborator so that tests can move time themselves: a monotonic
 * one for delays and durations, the wall clock for the age of records.
 */
interface TimeSource {
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

    /** @return a monotonic time in nanoseconds, as {@link System#nanoTime()} */
    long nanoTime();

    /** @return the wall-clock time, as {@link System#currentTimeMillis()} */
    long currentTimeMillis();
}
