package dev.outbox.relay.process;

import static dev.outbox.relay.process.ChildRelay.liveLeases;
import static dev.outbox.relay.process.ProcessKillFailoverIT.count;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.migrations.OutboxMigrations;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import java.sql.Connection;
import java.sql.Statement;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** The relay process stops gracefully on SIGTERM, also while it starts. */
@ExtendWith(RealServices.class)
@Tag("integration")
class ProcessSigtermIT {

    /**
     * SIGTERM (what {@code docker stop} and Kubernetes send) makes the process close the relay: it
     * exits 0, its leases are handed back (owner null, so another relay takes them at once rather
     * than after lease expiry) and its membership row is gone. The lease here is 60 s, so a lease
     * still held by the dead process could not have expired during the test.
     */
    @Test
    void sigtermHandsTheLeasesBackAndExitsZero(TestDatabase db, TestKafka kafka) throws Exception {
        Map<String, String> env = ChildRelay.env(db, kafka.bootstrapServers(), "relay-term");
        env.put("OUTBOX_RELAY_LEASE_DURATION", "60s");
        try (ChildRelay relay = ChildRelay.start("sigterm", env)) {
            await("the relay owns every shard")
                    .atMost(Duration.ofSeconds(120))
                    .pollInterval(Duration.ofMillis(250))
                    .untilAsserted(() -> {
                        assertThat(relay.process.isAlive())
                                .as("alive, see %s", relay.err)
                                .isTrue();
                        assertThat(liveLeases(db, "relay-term")).isEqualTo(64);
                    });
            assertThat(count(db, "select count(*) from outbox.outbox_relay_member where owner = 'relay-term'"))
                    .isOne();

            relay.process.destroy(); // SIGTERM on Linux

            assertThat(relay.waitFor(90)).as("exit code, see %s", relay.out).isZero();
            assertThat(count(db, "select count(*) from outbox.outbox_shard_lease where owner is not null"))
                    .isZero();
            assertThat(count(db, "select count(*) from outbox.outbox_relay_member"))
                    .isZero();
            assertThat(relay.stdout())
                    .contains("handed back shards [0-63]")
                    .contains("outbox-relay[relay-term] stopped");
            assertThat(relay.stderrLines()).isEmpty();
        }
    }

    /**
     * A SIGTERM while the start waits for PostgreSQL (here a port where nothing listens, with a
     * startup-timeout of 2 minutes) stops the process at once, exit 0: the start holds no lease, no
     * membership and no transaction then. It waited for the start to give up before (up to 5 minutes), and
     * then exited 143.
     */
    @Test
    void sigtermWhileTheStartWaitsForPostgresExitsAtOnce(TestDatabase db, TestKafka kafka) throws Exception {
        Map<String, String> env = ChildRelay.env(db, kafka.bootstrapServers(), "relay-term-checking");
        env.put("OUTBOX_RELAY_JDBC_URL", "jdbc:postgresql://127.0.0.1:1/" + db.name());
        env.put("OUTBOX_RELAY_STARTUP_TIMEOUT", "2m");
        try (ChildRelay relay = ChildRelay.start("sigterm-checking", env)) {
            await("the start waits for PostgreSQL")
                    .atMost(Duration.ofSeconds(60))
                    .pollInterval(Duration.ofMillis(100))
                    .untilAsserted(() -> assertThat(relay.stdout()).contains("not reachable yet"));

            long sent = System.nanoTime();
            relay.process.destroy(); // SIGTERM on Linux

            assertThat(relay.waitFor(20)).as("exit code, see %s", relay.out).isZero();
            assertThat(Duration.ofNanos(System.nanoTime() - sent)).isLessThan(Duration.ofSeconds(10));
            assertThat(relay.stdout()).contains("outbox-relay stopped during its start; it had claimed nothing");
            assertThat(relay.stderrLines()).isEmpty();
        }
    }

    /**
     * A SIGTERM while {@code --migrate} runs waits for the migrations (held here behind a lock on the
     * migrations' history table), then ends the start before the relay claims anything: exit 0, no lease
     * and no membership of this instance. A JVM stopped in the middle of the migrations would leave their
     * run to the next start (and a concurrent index build half done).
     */
    @Test
    void sigtermWhileMigratingWaitsForTheMigrationsThenExitsWithoutStarting(TestDatabase db, TestKafka kafka)
            throws Exception {
        Map<String, String> env = ChildRelay.env(db, kafka.bootstrapServers(), "relay-term-migrating");
        try (Connection holder = db.connect()) {
            holder.setAutoCommit(false);
            try (Statement st = holder.createStatement()) {
                st.execute("lock table outbox." + OutboxMigrations.HISTORY_TABLE + " in access exclusive mode");
            }
            try (ChildRelay relay = ChildRelay.start("sigterm-migrating", env, "--migrate")) {
                await("the migrations wait for the lock")
                        .atMost(Duration.ofSeconds(60))
                        .pollInterval(Duration.ofMillis(100))
                        .until(() -> count(
                                        db,
                                        "select count(*) from pg_locks where not granted and relation = 'outbox."
                                                + OutboxMigrations.HISTORY_TABLE + "'::regclass")
                                > 0);

                relay.process.destroy(); // SIGTERM on Linux
                Thread.sleep(2_000);
                assertThat(relay.process.isAlive())
                        .as("waiting for the migrations, see %s", relay.out)
                        .isTrue();
                holder.rollback();

                assertThat(relay.waitFor(60)).as("exit code, see %s", relay.out).isZero();
                assertThat(relay.stdout())
                        .contains("the migrations run to their end first")
                        .contains("outbox-relay stopped after its migrations, before it started");
                assertThat(relay.stderrLines()).isEmpty();
                assertThat(count(
                                db,
                                "select count(*) from outbox.outbox_shard_lease where owner = 'relay-term-migrating'"))
                        .isZero();
                assertThat(count(
                                db,
                                "select count(*) from outbox.outbox_relay_member where owner = 'relay-term-migrating'"))
                        .isZero();
            }
        }
    }

    /**
     * A start that failed before the JVM began to exit does not decide that JVM's exit code: a JVM that
     * ran the {@code run} command through {@link Main#run} (an embedding application, the in-process
     * tests), got exit code 3 back and then ended by itself exits 0. The shutdown hook halted such a JVM
     * with the start's code, which ended the test JVM of this module with code 3.
     */
    @Test
    void aStartThatFailedBeforeTheExitLeavesTheExitCodeToTheJvm() throws Exception {
        try (ChildRelay relay = ChildRelay.start(
                "embedded-failed-start",
                Map.of(),
                EmbeddedRunMain.class,
                "--jdbc-url=jdbc:postgresql://127.0.0.1:1/none",
                "--bootstrap-servers=127.0.0.1:1",
                "--http-port=0",
                "--startup-timeout=1s")) {
            assertThat(relay.waitFor(60)).as("exit code, see %s", relay.err).isZero();
            assertThat(relay.stdout()).contains("Main.run returned 3");
        }
    }
}
