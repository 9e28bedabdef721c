package dev.outbox.relay.process;

import static org.assertj.core.api.Assertions.assertThat;

import dev.outbox.testkit.TcpProxy;
import dev.outbox.testkit.TestDatabase;
import java.net.URI;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * An admin command waits for PostgreSQL {@code startup-timeout} in all: its check and its pool's first
 * connection share one deadline. Here PostgreSQL answers only the check, and only late in the timeout;
 * the pool's connections that follow are refused (a database restarting) or never answered (a
 * black-holed network). Before, the pool waited a whole {@code startup-timeout} of its own after the check
 * had passed, so the command gave up after the check's wait and another {@code startup-timeout}.
 */
@Tag("integration")
@Timeout(value = 2, unit = TimeUnit.MINUTES, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class AdminStartupTimeoutIT {
    private static final long STARTUP_TIMEOUT_MILLIS = 5_000;

    /** When the one connection that reaches PostgreSQL is let through, counted from the command's start. */
    private static final long ANSWERS_AFTER_MILLIS = 3_500;

    @Test
    void aDatabaseGoneAfterALateCheckIsWaitedForOneStartupTimeoutInAll_refused() throws Exception {
        assertOneStartupTimeout(false);
    }

    @Test
    void aDatabaseGoneAfterALateCheckIsWaitedForOneStartupTimeoutInAll_blackHoled() throws Exception {
        assertOneStartupTimeout(true);
    }

    private static void assertOneStartupTimeout(boolean blackHole) throws Exception {
        try (TestDatabase db = TestDatabase.create()) {
            URI uri = URI.create(db.jdbcUrl().substring("jdbc:".length()));
            long start = System.nanoTime();
            long answersFrom = start + TimeUnit.MILLISECONDS.toNanos(ANSWERS_AFTER_MILLIS);
            AtomicBoolean forwarded = new AtomicBoolean();
            // exactly one connection through, the first one opened after answersFrom; every other one closed at
            // once, or with blackHole those after answersFrom held open without an answer
            try (TcpProxy gate = TcpProxy.start(uri.getHost(), uri.getPort(), () -> {
                boolean due = System.nanoTime() - answersFrom >= 0;
                if (due && forwarded.compareAndSet(false, true)) {
                    return TcpProxy.Admission.FORWARD;
                }
                return due && blackHole ? TcpProxy.Admission.HOLD : TcpProxy.Admission.REFUSE;
            })) {
                PoisonThroughTheCliIT.Cli r = PoisonThroughTheCliIT.run(
                        "status",
                        "--jdbc-url=jdbc:postgresql://127.0.0.1:" + gate.port() + uri.getPath(),
                        "--db-user=" + db.user(),
                        "--db-password=" + db.password(),
                        "--startup-timeout=" + STARTUP_TIMEOUT_MILLIS + "ms");
                long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
                assertThat(forwarded.get()).as("the check reached PostgreSQL").isTrue();
                assertThat(r.code()).as(String.join("\n", r.err())).isEqualTo(Main.EXIT_UNAVAILABLE);
                assertThat(r.err())
                        .singleElement()
                        .asString()
                        .startsWith("Cannot connect to PostgreSQL at jdbc:postgresql://127.0.0.1:" + gate.port())
                        .contains("waited 5s (setting startup-timeout, OUTBOX_RELAY_STARTUP_TIMEOUT)");
                // one startup-timeout and the command's own start; twice would be 8.5 s and more
                assertThat(millis).isBetween(STARTUP_TIMEOUT_MILLIS - 500, STARTUP_TIMEOUT_MILLIS + 2_000);
            }
        }
    }
}
