package dev.outbox.testkit;

import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Optional;
import org.junit.jupiter.api.Test;

/** When no PostgreSQL answers, one message lists every attempt and the fix. */
class PostgresLocatorTest {

    @Test
    void listsEveryAttemptWhenNothingAnswers() {
        var options = new PostgresLocator.Options(Optional.empty(), "127.0.0.1:1", "postgres", false, false);
        assertThatThrownBy(() -> PostgresLocator.locate(options))
                .isInstanceOf(ServiceUnavailableException.class)
                .hasMessageContaining("No PostgreSQL could be reached. Tried:")
                .hasMessageContaining("1. local server 127.0.0.1:1 as postgres: ")
                .hasMessageContaining("2. Testcontainers: skipped")
                .hasMessageContaining("3. embedded PostgreSQL: skipped")
                .hasMessageContaining("Fix: start PostgreSQL on 127.0.0.1:5432");
    }

    @Test
    void theLocalServerCanBeSkipped() {
        var options = new PostgresLocator.Options(Optional.empty(), "false", "postgres", false, false);
        assertThatThrownBy(() -> PostgresLocator.locate(options))
                .isInstanceOf(ServiceUnavailableException.class)
                .hasMessageContaining("1. local server: skipped (outbox.test.pg.local=false)");
    }

    @Test
    void aConfiguredUrlThatFailsIsAnErrorNotAFallback() {
        var options = new PostgresLocator.Options(
                Optional.of("jdbc:postgresql://127.0.0.1:1/postgres"), "127.0.0.1:5432", "postgres", false, false);
        assertThatThrownBy(() -> PostgresLocator.locate(options))
                .isInstanceOf(ServiceUnavailableException.class)
                .hasMessageContaining(
                        "1. configured URL jdbc:postgresql://127.0.0.1:1/postgres (outbox.test.jdbc.url): ")
                .hasMessageContaining("Fix: check that URL");
    }

    @Test
    void anUnparseableUrlIsNamed() {
        var options = new PostgresLocator.Options(
                Optional.of("jdbc:mysql://x/y"), "127.0.0.1:5432", "postgres", false, false);
        assertThatThrownBy(() -> PostgresLocator.locate(options)).hasMessageContaining("not a PostgreSQL JDBC URL");
    }
}
