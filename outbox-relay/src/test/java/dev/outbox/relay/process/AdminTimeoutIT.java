package dev.outbox.relay.process;

import static org.assertj.core.api.Assertions.assertThat;

import dev.outbox.testkit.TcpProxy;
import dev.outbox.testkit.TestDatabase;
import java.net.URI;
import java.sql.Connection;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The admin commands end within {@code admin-timeout}, with exit code 3 and a message naming the
 * setting, when PostgreSQL keeps them waiting: a lock someone holds on the outbox table, or a
 * database that stops answering mid-command (a paused connection, as a SIGSTOPped server or a
 * black-holed network leaves it). Before, {@code status} and {@code doctor} waited for ever, and
 * their snapshot held back vacuum of the outbox meanwhile (this test then ran into its own timeout).
 */
@Tag("integration")
@Timeout(value = 2, unit = TimeUnit.MINUTES, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class AdminTimeoutIT {
    private static final String TIMEOUT = "--admin-timeout=2s";

    @Test
    void aStatementKeptWaitingEndsTheCommandWithinTheTimeout() throws Exception {
        try (TestDatabase db = TestDatabase.create();
                Connection holder = db.connect();
                Statement st = holder.createStatement()) {
            holder.setAutoCommit(false);
            st.execute("lock table outbox.outbox_message in access exclusive mode");
            for (String[] command : new String[][] {{"status"}, {"parked", "list"}, {"doctor"}}) {
                long start = System.nanoTime();
                Result r = run(InProcess.dbArgs(db, with(command, TIMEOUT)));
                long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
                assertThat(r.code())
                        .as("%s: %s", String.join(" ", command), r.err())
                        .isEqualTo(Main.EXIT_UNAVAILABLE);
                assertThat(r.err())
                        .as(String.join(" ", command))
                        .contains("ran longer than 2s, setting admin-timeout, OUTBOX_RELAY_ADMIN_TIMEOUT")
                        .contains("SQLState 57014");
                assertThat(millis).as(String.join(" ", command)).isLessThan(20_000);
            }
            holder.rollback();
            assertThat(run(InProcess.dbArgs(db, "status", TIMEOUT)).code()).isZero();
        }
    }

    @Test
    void aDatabaseThatStopsAnsweringMidCommandEndsIt() throws Exception {
        try (TestDatabase db = TestDatabase.create();
                Connection holder = db.connect();
                Statement st = holder.createStatement()) {
            URI uri = URI.create(db.jdbcUrl().substring("jdbc:".length()));
            try (TcpProxy proxy = TcpProxy.start(uri.getHost(), uri.getPort())) {
                String proxied = "jdbc:postgresql://127.0.0.1:" + proxy.port() + uri.getPath();
                holder.setAutoCommit(false);
                // the command's count waits on the lock; then the proxy stops forwarding, so the server's
                // answer (the statement timeout's error) never arrives and only the socket timeout ends it
                st.execute("lock table outbox.outbox_message in access exclusive mode");
                long start = System.nanoTime();
                CompletableFuture<Result> status = CompletableFuture.supplyAsync(() -> run(new String[] {
                    "status",
                    "--jdbc-url=" + proxied,
                    "--db-user=" + db.user(),
                    "--db-password=" + db.password(),
                    TIMEOUT
                }));
                Thread.sleep(1_000);
                proxy.pause();
                Result r = status.get(60, TimeUnit.SECONDS);
                long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
                assertThat(r.code()).as(r.err()).isEqualTo(Main.EXIT_UNAVAILABLE);
                assertThat(r.err())
                        .contains("PostgreSQL stopped answering or the connection broke")
                        .contains("setting admin-timeout");
                // admin-timeout plus the 5 s the socket waits beyond it, and the start
                assertThat(millis).isBetween(6_000L, 30_000L);
                holder.rollback();
            }
        }
    }

    private static Result run(String[] args) {
        PoisonThroughTheCliIT.Cli cli = PoisonThroughTheCliIT.run(args);
        return new Result(cli.code(), String.join("\n", cli.err()));
    }

    private record Result(int code, String err) {}

    private static String[] with(String[] command, String... more) {
        List<String> all = new ArrayList<>(List.of(command));
        all.addAll(List.of(more));
        return all.toArray(String[]::new);
    }
}
