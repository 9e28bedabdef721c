package dev.outbox.relay.process;

import static org.assertj.core.api.Assertions.assertThat;

import dev.outbox.testkit.TcpProxy;
import dev.outbox.testkit.TestDatabase;
import java.net.URI;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The relay's start waits for PostgreSQL and Kafka {@code startup-timeout} in all: the start's check, the
 * pool's first connection with the schema check on it, and the check of Kafka share one deadline. Here
 * PostgreSQL answers the check only late in the timeout; then the pool's connections are refused (a
 * database restarting) or never answered (a black-holed network), or they are answered and Kafka is not
 * there. Before, the schema check waited the shortest of {@code startup-timeout}, the lease and 30 s of
 * its own after the check had passed, and the check of Kafka a whole {@code startup-timeout}, so the
 * start gave up after the check's wait and about another {@code startup-timeout}.
 */
@Tag("integration")
@Timeout(value = 2, unit = TimeUnit.MINUTES, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class RelayStartupTimeoutIT {
    private static final long STARTUP_TIMEOUT_MILLIS = 5_000;

    /** When the first connection that reaches PostgreSQL is let through, counted from the start. */
    private static final long ANSWERS_AFTER_MILLIS = 3_500;

    @Test
    void aDatabaseGoneAfterALateCheckIsWaitedForOneStartupTimeoutInAll_refused() throws Exception {
        assertOneStartupTimeout(Gone.REFUSED);
    }

    @Test
    void aDatabaseGoneAfterALateCheckIsWaitedForOneStartupTimeoutInAll_blackHoled() throws Exception {
        assertOneStartupTimeout(Gone.BLACK_HOLED);
    }

    @Test
    void kafkaIsWaitedForWhatALateCheckOfPostgresLeftOfStartupTimeout() throws Exception {
        assertOneStartupTimeout(Gone.NOT);
    }

    /** What becomes of PostgreSQL once the start's check has reached it. */
    private enum Gone {
        /** Every later connection is closed at once. */
        REFUSED,
        /** Every later connection is held open without an answer. */
        BLACK_HOLED,
        /** It stays: every later connection is forwarded, and Kafka does not answer instead. */
        NOT
    }

    private static void assertOneStartupTimeout(Gone gone) throws Exception {
        try (TestDatabase db = TestDatabase.create()) {
            URI uri = URI.create(db.jdbcUrl().substring("jdbc:".length()));
            long start = System.nanoTime();
            long answersFrom = start + TimeUnit.MILLISECONDS.toNanos(ANSWERS_AFTER_MILLIS);
            AtomicBoolean forwarded = new AtomicBoolean();
            AtomicInteger after = new AtomicInteger();
            // connections before answersFrom are closed at once; the first one after it goes through, and those that
            // follow go through too, are closed at once, or are held open without an answer
            try (TcpProxy gate = TcpProxy.start(uri.getHost(), uri.getPort(), () -> {
                if (System.nanoTime() - answersFrom < 0) {
                    return TcpProxy.Admission.REFUSE;
                }
                if (forwarded.compareAndSet(false, true)) {
                    return TcpProxy.Admission.FORWARD;
                }
                after.incrementAndGet();
                return switch (gone) {
                    case REFUSED -> TcpProxy.Admission.REFUSE;
                    case BLACK_HOLED -> TcpProxy.Admission.HOLD;
                    case NOT -> TcpProxy.Admission.FORWARD;
                };
            })) {
                PoisonThroughTheCliIT.Cli r = PoisonThroughTheCliIT.run(
                        "--jdbc-url=jdbc:postgresql://127.0.0.1:" + gate.port() + uri.getPath(),
                        "--db-user=" + db.user(),
                        "--db-password=" + db.password(),
                        "--bootstrap-servers=127.0.0.1:1",
                        "--http-port=0",
                        "--startup-timeout=" + STARTUP_TIMEOUT_MILLIS + "ms");
                long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
                assertThat(forwarded.get()).as("the check reached PostgreSQL").isTrue();
                assertThat(after.get()).as("connections after the check's").isPositive();
                assertThat(r.code()).as(String.join("\n", r.err())).isEqualTo(Main.EXIT_UNAVAILABLE);
                // one startup-timeout and the process's own start; twice would be 8.5 s and more
                assertThat(millis)
                        .as(String.join("\n", r.err()))
                        .isBetween(STARTUP_TIMEOUT_MILLIS - 500, STARTUP_TIMEOUT_MILLIS + 2_000);
                if (gone == Gone.NOT) {
                    assertThat(r.err())
                            .singleElement()
                            .asString()
                            .startsWith(
                                    "Kafka at 127.0.0.1:1 (setting bootstrap-servers, OUTBOX_RELAY_BOOTSTRAP_SERVERS)")
                            .contains("did not answer within 5s of the start (setting startup-timeout,"
                                    + " OUTBOX_RELAY_STARTUP_TIMEOUT");
                } else {
                    assertThat(r.err())
                            .singleElement()
                            .asString()
                            .startsWith("Cannot connect to PostgreSQL at jdbc:postgresql://127.0.0.1:" + gate.port())
                            .contains("the relay's pool got no connection, or no answer on it, before startup-timeout"
                                    + " ran out")
                            .contains("waited 5s (setting startup-timeout, OUTBOX_RELAY_STARTUP_TIMEOUT)");
                }
            }
        }
    }
}
