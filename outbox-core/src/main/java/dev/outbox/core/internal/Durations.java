package dev.outbox.core.internal;

import java.math.BigDecimal;
import java.time.Duration;
import java.time.temporal.ChronoUnit;

/**
 * The one way every module writes a duration in a message, a log line, {@code --help}, the README
 * and the doctor's report: whole days, hours, minutes, seconds and milliseconds, largest first,
 * zero parts left out ({@code 30s}, {@code 100ms}, {@code 1h}, {@code 1m30s}, {@code 7d3h}), the
 * syntax the relay process's settings accept. Not part of the public API.
 */
public final class Durations {

    private static final long[] UNIT_MILLIS = {86_400_000, 3_600_000, 60_000, 1000, 1};
    private static final String[] UNIT_NAMES = {"d", "h", "m", "s", "ms"};

    private Durations() {}

    /**
     * @param d a duration
     * @return it exactly, e.g. {@code 30s}, {@code 1s500ms}, {@code 3m20s}, {@code 0s}, {@code -5s};
     *     a part below a millisecond (no setting is that fine, but a caller's value can be) as a
     *     decimal of milliseconds, e.g. {@code 0.5ms}
     */
    public static String format(Duration d) {
        if (d.isNegative()) {
            return "-" + format(d.negated());
        }
        if (d.isZero()) {
            return "0s";
        }
        if (d.getSeconds() >= Long.MAX_VALUE / 1000) {
            // past what milliseconds hold: a value far beyond any valid setting, named in whole days
            return d.toDays() + "d";
        }
        StringBuilder out = new StringBuilder();
        long ms = d.toMillis();
        for (int i = 0; i < UNIT_MILLIS.length; i++) {
            long n = ms / UNIT_MILLIS[i];
            ms %= UNIT_MILLIS[i];
            boolean last = i == UNIT_MILLIS.length - 1;
            if (last && d.getNano() % 1_000_000 != 0) {
                out.append(new BigDecimal(n * 1_000_000 + d.getNano() % 1_000_000)
                                .movePointLeft(6)
                                .stripTrailingZeros()
                                .toPlainString())
                        .append(UNIT_NAMES[i]);
            } else if (n != 0) {
                out.append(n).append(UNIT_NAMES[i]);
            }
        }
        return out.toString();
    }

    /**
     * A measured time (an age, a wait) cut to a precision a person reads at a glance, to be written
     * with {@link #format}: milliseconds below a second, whole seconds below an hour ({@code 3m20s}),
     * whole minutes below a day ({@code 5h12m}), whole hours above ({@code 7d3h}).
     *
     * @param d a duration, not negative
     * @return {@code d} truncated as described
     */
    public static Duration roughly(Duration d) {
        ChronoUnit unit;
        if (d.compareTo(Duration.ofSeconds(1)) < 0) {
            unit = ChronoUnit.MILLIS;
        } else if (d.compareTo(Duration.ofHours(1)) < 0) {
            unit = ChronoUnit.SECONDS;
        } else if (d.compareTo(Duration.ofDays(1)) < 0) {
            unit = ChronoUnit.MINUTES;
        } else {
            unit = ChronoUnit.HOURS;
        }
        return d.truncatedTo(unit);
    }
}
