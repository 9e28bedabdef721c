package dev.outbox.relay.internal;

import java.math.BigDecimal;
import java.time.Duration;
import java.util.Objects;

/**
 * The one way the relay writes a duration in a message, a log line, {@code --help} and the README:
 * the largest whole unit, e.g. {@code 30s}, {@code 100ms}, {@code 1h}, the same syntax the process
 * settings accept. Not part of the public API.
 */
public final class Durations {

    private Durations() {}

    /**
     * @param d a duration
     * @return it in the settings' own syntax, e.g. {@code 30s}, {@code 1500ms}, {@code 0.5ms}
     */
    public static String format(Duration d) {
        if (d.getNano() % 1_000_000 != 0) {
            // below a millisecond; no setting is that fine, but a caller's Duration can be
            return new BigDecimal(d.toNanos())
                            .movePointLeft(6)
                            .stripTrailingZeros()
                            .toPlainString() + "ms";
        }
        long ms = d.toMillis();
        if (ms % 3_600_000 == 0 && ms != 0) {
            return ms / 3_600_000 + "h";
        }
        if (ms % 60_000 == 0 && ms != 0) {
            return ms / 60_000 + "m";
        }
        if (ms % 1000 == 0) {
            return ms / 1000 + "s";
        }
        return ms + "ms";
    }

    /**
     * @param value the value
     * @param min the shortest allowed value
     * @param max the longest allowed value
     * @param name the setting's name, used in the messages
     * @param suffix appended to the message as is; empty for none
     * @return {@code value}
     * @throws NullPointerException "{@code <name> may not be null}"
     * @throws IllegalArgumentException "{@code <name> must be between <min> and <max>, got
     *     <value><suffix>}", durations written by {@link #format}
     */
    public static Duration requireBetween(Duration value, Duration min, Duration max, String name, String suffix) {
        Objects.requireNonNull(value, name + " may not be null");
        if (value.compareTo(min) < 0 || value.compareTo(max) > 0) {
            throw new IllegalArgumentException(name + " must be between " + format(min) + " and " + format(max)
                    + ", got " + format(value) + suffix);
        }
        return value;
    }
}
