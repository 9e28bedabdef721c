package dev.outbox.relay.process;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.core.Outbox;
import dev.outbox.core.OutboxMessage;
import dev.outbox.migrations.OutboxMigrations;
import dev.outbox.testkit.PrivatePostgres;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.jooq.DSLContext;
import org.jooq.SQLDialect;
import org.jooq.impl.DSL;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.postgresql.ds.PGSimpleDataSource;

/** A real PostgreSQL restart (a private server, stopped and started by the test) while a relay process drains the outbox. */
@ExtendWith(RealServices.class)
@Tag("integration")
class PostgresRestartIT {
    private static final int MESSAGES = 20_000;
    private static final int PARTITIONS = 3;

    /**
     * G1 across a PostgreSQL restart ({@code pg_ctl stop -m fast}, then start): every committed
     * message reaches Kafka and the outbox drains, with the relay process running throughout.
     */
    @Test
    @Timeout(value = 6, unit = TimeUnit.MINUTES)
    void aPostgresRestartDuringADrainLosesNothing(TestDatabase unused, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("pg-restart");
        kafka.createTopic(topic, PARTITIONS);
        try (PrivatePostgres pg = PrivatePostgres.start()) {
            pg.createDatabase("app");
            PGSimpleDataSource ds = new PGSimpleDataSource();
            ds.setUrl(pg.server().jdbcUrl("app"));
            ds.setUser("postgres");
            OutboxMigrations.migrate(ds, "outbox");
            DSLContext dsl = DSL.using(ds, SQLDialect.POSTGRES);
            String expected = System.getProperty("outbox.test.pg.expected.version", "");
            if (!expected.isEmpty()) {
                // the postgres-versions profile: the private server runs the same embedded binaries as the test kit's
                assertThat(String.valueOf(dsl.fetchValue("show server_version")))
                        .startsWith(expected.substring(0, expected.lastIndexOf('.')));
            }
            Outbox outbox = Outbox.builder().build();
            List<UUID> committed = new ArrayList<>();
            for (int start = 0; start < MESSAGES; start += 500) {
                List<OutboxMessage> batch = new ArrayList<>();
                for (int i = start; i < start + 500; i++) {
                    batch.add(OutboxMessage.of(topic, "key-" + (i % 200), "Test", "text/plain", ("m " + i).getBytes()));
                }
                committed.addAll(dsl.transactionResult(tx -> outbox.appendAll(tx.dsl(), batch)));
            }
            Map<String, String> env = ChildRelay.env(unused, kafka.bootstrapServers(), "relay-restart");
            env.put("OUTBOX_RELAY_JDBC_URL", pg.server().jdbcUrl("app"));
            env.put("OUTBOX_RELAY_DB_USER", "postgres");
            env.put("OUTBOX_RELAY_DB_PASSWORD", "");
            env.put("OUTBOX_RELAY_LEASE_DURATION", "6s");
            env.put("OUTBOX_RELAY_BATCH_SIZE", "20");
            try (Records records = new Records(kafka.consumerProperties("unused"), topic, PARTITIONS);
                    ChildRelay relay = ChildRelay.start("pg-restart", env)) {
                await("the drain under way")
                        .atMost(Duration.ofSeconds(120))
                        .pollInterval(Duration.ofMillis(50))
                        .untilAsserted(() -> {
                            assertThat(relay.process.isAlive())
                                    .as("relay alive, see %s", relay.err)
                                    .isTrue();
                            assertThat(records.size()).isGreaterThanOrEqualTo(2_000);
                        });
                pg.stop();
                int atStop = records.size();
                Thread.sleep(3_000);
                pg.startAgain();
                assertThat(atStop).as("restarted mid-drain").isLessThan(MESSAGES);

                await("every committed message in Kafka")
                        .atMost(Duration.ofMinutes(3))
                        .pollInterval(Duration.ofMillis(500))
                        .untilAsserted(() -> {
                            assertThat(relay.process.isAlive())
                                    .as("relay alive, see %s", relay.err)
                                    .isTrue();
                            assertThat(records.missing(committed))
                                    .as("committed messages not in Kafka, of %d", committed.size())
                                    .isZero();
                        });
                await("the outbox drained").atMost(Duration.ofSeconds(60)).untilAsserted(() -> {
                    try (Connection c = ds.getConnection();
                            Statement st = c.createStatement();
                            ResultSet rs = st.executeQuery("select count(*) from outbox.outbox_message")) {
                        rs.next();
                        assertThat(rs.getInt(1)).isZero();
                    }
                });
                System.out.printf(
                        "[PostgresRestartIT] %d messages, %d records in Kafka; PostgreSQL restarted after %d%n",
                        MESSAGES, records.size(), atStop);
                relay.process.destroy();
                assertThat(relay.waitFor(60)).as("exit code, see %s", relay.err).isZero();
            }
        }
    }
}
