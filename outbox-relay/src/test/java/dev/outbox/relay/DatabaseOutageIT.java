package dev.outbox.relay;

import static dev.outbox.relay.Fixtures.message;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.core.OutboxMessage;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import org.jooq.SQLDialect;
import org.jooq.impl.DSL;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

@ExtendWith(RealServices.class)
class DatabaseOutageIT {

    /**
     * G1 across a PostgreSQL restart, as the relay sees one: every server connection of the relay
     * (pool and LISTEN connection) is terminated, repeatedly, while it drains. Nothing committed is
     * lost and the relay keeps working without a restart of its own.
     */
    @Test
    void relaySurvivesLosingEveryDatabaseConnection(TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("db-outage");
        kafka.createTopic(topic, 4);
        Set<UUID> committed = new HashSet<>();
        try (Relay relay = Fixtures.relay(db, kafka, "db-outage-relay").build();
                Fixtures.Collector kafkaSide = new Fixtures.Collector(kafka.bootstrapServers(), topic)) {
            relay.start();
            for (int round = 0; round < 6; round++) {
                List<OutboxMessage> batch = new ArrayList<>();
                for (int i = 0; i < 300; i++) {
                    batch.add(message(topic, "key-" + (i % 37), "r" + round + "-" + i));
                }
                // a connection of its own each round: the cut below also kills pooled ones
                try (Connection c = db.connect()) {
                    committed.addAll(Fixtures.commit(DSL.using(c, SQLDialect.POSTGRES), batch));
                }
                // the relay reconnects lazily (pool) or after a backoff (LISTEN): wait until it holds a connection
                // again, then cut
                await().atMost(Duration.ofSeconds(30))
                        .pollInterval(Duration.ofMillis(20))
                        .until(() -> terminateOtherBackends(db) > 0);
            }
            await().atMost(Duration.ofSeconds(120))
                    .untilAsserted(() -> assertThat(kafkaSide.ids()).containsAll(committed));
            await().atMost(Duration.ofSeconds(30))
                    .untilAsserted(() -> assertThat(backlog(db)).isZero());
            // still alive and working after the last cut: a new message goes through
            UUID after;
            try (Connection c = db.connect()) {
                after = Fixtures.commit(DSL.using(c, SQLDialect.POSTGRES), List.of(message(topic, "after", "after")))
                        .get(0);
            }
            await().atMost(Duration.ofSeconds(60))
                    .untilAsserted(() -> assertThat(kafkaSide.ids()).contains(after));
            assertThat(relay.isLive()).isTrue();
        }
    }

    private static long backlog(TestDatabase db) throws Exception {
        try (Connection c = db.connect();
                Statement st = c.createStatement();
                ResultSet rs = st.executeQuery("select count(*) from " + db.schema() + ".outbox_message")) {
            rs.next();
            return rs.getLong(1);
        }
    }

    /** Terminates every backend of the test database except the caller's own, as a server restart would. */
    private static int terminateOtherBackends(TestDatabase db) throws Exception {
        try (Connection c = db.server().connectAdmin();
                Statement st = c.createStatement();
                ResultSet rs =
                        st.executeQuery("select count(*) filter (where pg_terminate_backend(pid)) from pg_stat_activity"
                                + " where datname = '" + db.name()
                                + "' and pid <> pg_backend_pid() and application_name <> 'outbox-testkit'")) {
            rs.next();
            return rs.getInt(1);
        }
    }
}
