package dev.outbox.spring.internal;

import dev.outbox.core.internal.Durations;
import java.time.Duration;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.Objects;
import java.util.function.Consumer;
import java.util.stream.Collectors;
import org.springframework.boot.context.properties.bind.Bindable;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.boot.context.properties.source.InvalidConfigurationPropertyNameException;
import org.springframework.core.env.Environment;

/**
 * Hands the value of an {@code outbox.*} setting to the builder setter that takes it, so that a
 * value the setter refuses is reported by its property: an {@link IllegalArgumentException} whose
 * message is {@code <property>=<value as given>: <the setter's message>}, e.g. {@code
 * outbox.idempotency.lock-timeout=0s: lockTimeout must be between 1ms and 10m, got 0s}.
 */
public final class NamedSettings {
    private final Binder binder;

    /** @param environment where the settings were given, for the values as written */
    public NamedSettings(Environment environment) {
        this.binder = Binder.get(Objects.requireNonNull(environment, "environment may not be null"));
    }

    /**
     * Hands one value to its setter.
     *
     * @param property the full name of the setting ({@code outbox.idempotency.ttl})
     * @param value the bound value
     * @param setter the builder setter, or a check
     * @param <T> the type of the value
     * @throws IllegalArgumentException starting with {@code <property>=<value>: } and the setter's
     *     message when the setter refuses the value (with an {@link IllegalArgumentException} or a
     *     {@link NullPointerException})
     */
    public <T> void set(String property, T value, Consumer<T> setter) {
        try {
            setter.accept(value);
        } catch (IllegalArgumentException | NullPointerException e) {
            throw refused(property, value, e.getMessage());
        }
    }

    /**
     * Hands a list to its setter; when the setter refuses it, each entry is handed alone to find the
     * one refused, and the message names it by its index: {@code outbox.idempotency.paths=/orders,:
     * outbox.idempotency.paths[1] is "": <the setter's message>}.
     *
     * @param property the full name of the setting
     * @param values the bound list
     * @param setter the builder setter
     * @param <T> the type of the entries
     * @throws IllegalArgumentException naming the property, the value as given and the entry refused
     */
    public <T> void setList(String property, List<T> values, Consumer<List<T>> setter) {
        try {
            setter.accept(values);
        } catch (IllegalArgumentException | NullPointerException e) {
            if (values != null) {
                for (int i = 0; i < values.size(); i++) {
                    T entry = values.get(i);
                    try {
                        setter.accept(Collections.singletonList(entry));
                    } catch (IllegalArgumentException | NullPointerException one) {
                        throw refused(
                                property,
                                values,
                                property + "[" + i + "] is " + (entry == null ? "null" : "\"" + entry + "\"") + ": "
                                        + one.getMessage());
                    }
                }
            }
            throw refused(property, values, e.getMessage());
        }
    }

    /**
     * @param property the full name of the setting
     * @param value the bound value
     * @param message why it is refused
     * @return the exception that reports {@code <property>=<value as given>: <message>}
     */
    public IllegalArgumentException refused(String property, Object value, String message) {
        return new IllegalArgumentException(property + "=" + given(property, value) + ": " + message);
    }

    /**
     * @param property the full name of the setting
     * @param value the bound value, shown when the setting was not given as one text
     * @return the value as the application wrote it ({@code 2s}, {@code 3GB}, {@code /orders,}),
     *     else as bound: a duration as {@code 500ms}, a list comma-separated
     */
    public String given(String property, Object value) {
        String written = written(property);
        if (written != null) {
            return written;
        }
        if (value == null) {
            return "";
        }
        if (value instanceof Duration d) {
            return Durations.format(d);
        }
        if (value instanceof Collection<?> c) {
            return c.stream().map(String::valueOf).collect(Collectors.joining(","));
        }
        return String.valueOf(value);
    }

    /** @return the setting as one text, or null when it was not given so (a list by index, a YAML list) */
    private String written(String property) {
        try {
            return binder.bind(property, Bindable.of(String.class)).orElse(null);
        } catch (InvalidConfigurationPropertyNameException e) {
            return null;
        }
    }
}
