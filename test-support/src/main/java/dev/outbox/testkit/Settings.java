package dev.outbox.testkit;

import java.util.Locale;
import java.util.Optional;

/** Reads a test-kit setting from a system property or, failing that, an environment variable. */
final class Settings {
    private Settings() {}

    /**
     * @param property system property name, e.g. {@code outbox.test.jdbc.url}
     * @return the property, else the environment variable with the same name upper-cased and with
     *     dots as underscores ({@code OUTBOX_TEST_JDBC_URL}), else empty
     */
    static Optional<String> get(String property) {
        String value = System.getProperty(property);
        if (value == null || value.isBlank()) {
            value = System.getenv(property.toUpperCase(Locale.ROOT).replace('.', '_'));
        }
        return value == null || value.isBlank() ? Optional.empty() : Optional.of(value.trim());
    }
}
