package dev.outbox.relay.admin;

import java.time.Duration;

/**
 * Durations as the doctor hands them to PostgreSQL and reads them back; they are written in its
 * report by {@link dev.outbox.core.internal.Durations}.
 */
final class Intervals {

    private Intervals() {}

    /** @return {@code d} as a PostgreSQL interval literal, for a {@code ?::interval} parameter */
    static String interval(Duration d) {
        return d.toMillis() + " milliseconds";
    }

    /** @return a number of seconds read from the database (an {@code extract(epoch ...)}), at least 0 */
    static Duration seconds(double s) {
        return Duration.ofMillis(Math.round(Math.max(0, s) * 1000));
    }
}
