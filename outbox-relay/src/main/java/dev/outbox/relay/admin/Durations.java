package dev.outbox.relay.admin;

import java.time.Duration;

/** Durations as the doctor prints them and as it hands them to PostgreSQL. */
final class Durations {

    private Durations() {}

    /** @return a duration as the doctor prints it: {@code 850ms}, {@code 12s}, {@code 3m20s}, {@code 5h}, {@code 7d} */
    static String format(Duration d) {
        long ms = d.toMillis();
        if (ms < 1000) {
            return ms + "ms";
        }
        long s = ms / 1000;
        if (s < 60) {
            return s + "s";
        }
        if (s < 3600) {
            return s / 60 + "m" + (s % 60 == 0 ? "" : s % 60 + "s");
        }
        if (s < 86_400) {
            return s / 3600 + "h" + (s % 3600 / 60 == 0 ? "" : s % 3600 / 60 + "m");
        }
        return s / 86_400 + "d" + (s % 86_400 / 3600 == 0 ? "" : s % 86_400 / 3600 + "h");
    }

    /** @return {@code d} as a PostgreSQL interval literal, for a {@code ?::interval} parameter */
    static String interval(Duration d) {
        return d.toMillis() + " milliseconds";
    }

    /** @return a number of seconds read from the database (an {@code extract(epoch ...)}), at least 0 */
    static Duration seconds(double s) {
        return Duration.ofMillis(Math.round(Math.max(0, s) * 1000));
    }
}
