package dev.outbox.core.internal;

import java.time.Duration;
import java.util.Objects;

/**
 * Argument checks shared by the public builders, so that they word their errors alike. Every
 * message starts with the setting's {@code name}; a {@code suffix} (for example {@code "; the
 * default is 10 s"}) is appended verbatim. Not part of the public API.
 */
public final class Checks {

    private Checks() {}

    /**
     * @param value the value
     * @param name the setting's name, used in the messages
     * @return {@code value}
     * @throws NullPointerException "{@code <name> may not be null}"
     * @throws IllegalArgumentException "{@code <name> may not be blank}"
     */
    public static String requireNonBlank(String value, String name) {
        Objects.requireNonNull(value, name + " may not be null");
        if (value.isBlank()) {
            throw new IllegalArgumentException(name + " may not be blank");
        }
        return value;
    }

    /**
     * @param value the value
     * @param name the setting's name, used in the messages
     * @param suffix appended to the message as is; empty for none
     * @return {@code value}
     * @throws NullPointerException "{@code <name> may not be null}"
     * @throws IllegalArgumentException "{@code <name> must be positive, got <value><suffix>}" when
     *     zero or negative
     */
    public static Duration requirePositive(Duration value, String name, String suffix) {
        Objects.requireNonNull(value, name + " may not be null");
        if (value.isNegative() || value.isZero()) {
            throw new IllegalArgumentException(name + " must be positive, got " + Durations.format(value) + suffix);
        }
        return value;
    }

    /**
     * @param value the value
     * @param min the smallest allowed value
     * @param max the largest allowed value
     * @param name the setting's name, used in the message
     * @param suffix appended to the message as is; empty for none
     * @return {@code value}
     * @throws IllegalArgumentException "{@code <name> must be between <min> and <max>, got
     *     <value><suffix>}" when outside {@code min..max}
     */
    public static int requireBetween(int value, int min, int max, String name, String suffix) {
        if (value < min || value > max) {
            throw new IllegalArgumentException(
                    name + " must be between " + min + " and " + max + ", got " + value + suffix);
        }
        return value;
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
     *     <value><suffix>}" when outside {@code min..max}, durations written by {@link
     *     Durations#format}
     */
    public static Duration requireBetween(Duration value, Duration min, Duration max, String name, String suffix) {
        Objects.requireNonNull(value, name + " may not be null");
        if (value.compareTo(min) < 0 || value.compareTo(max) > 0) {
            throw new IllegalArgumentException(name + " must be between " + Durations.format(min) + " and "
                    + Durations.format(max) + ", got " + Durations.format(value) + suffix);
        }
        return value;
    }
}
