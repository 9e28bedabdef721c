package dev.outbox.relay.admin;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.outbox.core.Outbox;
import dev.outbox.core.OutboxException;
import dev.outbox.core.OutboxMessage;
import dev.outbox.core.Shards;
import dev.outbox.testkit.PrivatePostgres;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.assertj.core.groups.Tuple;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;

/** {@link RelayAdmin} on a real database, with rows, leases and members written the way a relay writes them. */
@ExtendWith(RealServices.class)
@Tag("integration")
class RelayAdminIT {
    private final Outbox outbox = Outbox.builder().build();
    private TestDatabase db;
    private RelayAdmin admin;

    @BeforeEach
    void clean(TestDatabase db) throws Exception {
        this.db = db;
        this.admin = RelayAdmin.create(db.dataSource(), "outbox");
        sql("delete from outbox.outbox_message");
        sql("delete from outbox.outbox_relay_member");
        sql("update outbox.outbox_shard_lease set owner = null, lease_until = '1970-01-01Z'");
    }

    @Test
    void statusShowsBacklogLeasesMembersAndParkedRows() throws Exception {
        List<UUID> ids = append("k1", "k1", "k2", "k3", "k3");
        int shardK1 = Shards.of("k1", null, 64);
        int shardK3 = Shards.of("k3", null, 64);
        long parkedId = outboxId(ids.get(4));
        sql(
                "update outbox.outbox_message set parked_at = clock_timestamp(), attempts = 1, last_error = 'RecordTooLargeException: too big'"
                        + " where id = " + parkedId);
        sql(
                "update outbox.outbox_shard_lease set owner = 'r1', epoch = 7, lease_until = clock_timestamp() + interval '30 seconds'"
                        + " where shard = " + shardK1);
        sql(
                "update outbox.outbox_shard_lease set owner = 'r0', epoch = 3, lease_until = clock_timestamp() - interval '1 minute'"
                        + " where shard = " + shardK3);
        sql(
                "insert into outbox.outbox_relay_member (owner, heartbeat_until) values ('r1', clock_timestamp() + interval '30 seconds'),"
                        + " ('r0', clock_timestamp() - interval '1 minute')");

        RelayStatus s = admin.status();

        assertThat(s.shards()).hasSize(64);
        assertThat(s.backlog()).isEqualTo(4);
        assertThat(s.parked()).isEqualTo(1);
        assertThat(s.oldestAge()).isNotNull().isPositive();
        ShardStatus k1 = s.shards().get(shardK1);
        assertThat(k1.shard()).isEqualTo(shardK1);
        assertThat(k1.backlog()).isEqualTo(2);
        assertThat(k1.owner()).isEqualTo("r1");
        assertThat(k1.epoch()).isEqualTo(7);
        assertThat(k1.leaseLive()).isTrue();
        ShardStatus k3 = s.shards().get(shardK3);
        assertThat(k3.backlog()).isEqualTo(1);
        assertThat(k3.parked()).isEqualTo(1);
        assertThat(k3.leaseLive()).isFalse();
        assertThat(s.shards().stream().mapToLong(ShardStatus::backlog).sum()).isEqualTo(4);
        assertThat(s.members())
                .extracting(RelayMember::owner, RelayMember::live, RelayMember::ownedShards)
                .containsExactlyInAnyOrder(Tuple.tuple("r1", true, 1), Tuple.tuple("r0", false, 0));
        assertThat(s.liveMembers()).isOne();
    }

    /**
     * A session idle in a transaction that holds a snapshot keeps the xmin horizon: vacuum cannot
     * remove the outbox rows the relay deletes after it. status() names the session, its state and
     * its query so that the operator can find and end it.
     */
    @Test
    void statusNamesTheSessionThatHoldsTheXminHorizon() throws Exception {
        try (Connection holder = db.connect()) {
            holder.setAutoCommit(false);
            holder.setTransactionIsolation(Connection.TRANSACTION_REPEATABLE_READ);
            try (Statement st = holder.createStatement()) {
                st.execute("set application_name = 'long-report'");
                st.executeQuery("select 'xmin-holder-marker', count(*) from outbox.outbox_message")
                        .close();
            }
            RelayStatus s = admin.status();
            assertThat(s.xminHolders()).anySatisfy(h -> {
                assertThat(h.kind()).isEqualTo("session");
                assertThat(h.name()).contains("long-report");
                assertThat(h.state()).isEqualTo("idle in transaction");
                assertThat(h.detail()).contains("xmin-holder-marker");
                assertThat(h.since()).isNotNull();
                assertThat(h.xmin()).isPositive();
            });
            holder.rollback();
        }
        assertThat(admin.status().xminHolders())
                .noneSatisfy(h -> assertThat(h.name()).contains("long-report"));
    }

    /**
     * Rows on shards that have no lease row (stored by a writer with another shard count, on an install
     * without V5's shard-range constraint) are published by no relay; status counts them as shards of their
     * own, with the fix, and in the totals. Before, the counts were driven by the lease rows alone and
     * status showed a backlog of 0 while doctor's outbox-unpublished failed on the same rows.
     */
    @Test
    void statusCountsRowsOnShardsWithoutALeaseRow() throws Exception {
        append("k1");
        sql("alter table outbox.outbox_message drop constraint outbox_message_shard_range");
        sql("insert into outbox.outbox_message (message_id, shard, topic, message_key, message_type, content_type,"
                + " created_at) values (gen_random_uuid(), 100, 'admin-test', 'k100', 'T', 'text/plain',"
                + " clock_timestamp() - interval '1 hour'), (gen_random_uuid(), 100, 'admin-test', 'k100', 'T',"
                + " 'text/plain', clock_timestamp())");
        sql("insert into outbox.outbox_message (message_id, shard, topic, message_key, message_type, content_type,"
                + " parked_at, last_error) values (gen_random_uuid(), 70, 'admin-test', 'k70', 'T', 'text/plain',"
                + " clock_timestamp(), 'X: y')");

        RelayStatus s = admin.status();

        assertThat(s.shards()).hasSize(64);
        assertThat(s.shards().stream().mapToLong(ShardStatus::backlog).sum()).isOne();
        ShardsWithoutLeaseRow stranded = s.withoutLeaseRow();
        assertThat(stranded.any()).isTrue();
        assertThat(stranded.shards())
                .extracting(ShardStatus::shard, ShardStatus::backlog, ShardStatus::parked, ShardStatus::owner)
                .containsExactly(Tuple.tuple(70, 0L, 1L, null), Tuple.tuple(100, 2L, 0L, null));
        assertThat(stranded.backlog()).isEqualTo(2);
        assertThat(stranded.parked()).isOne();
        assertThat(stranded.oldestAge()).isGreaterThanOrEqualTo(Duration.ofMinutes(59));
        assertThat(stranded.fix()).contains("Outbox.builder().shards(64)", "outbox_message_shard_range");
        assertThat(s.backlog()).isEqualTo(3);
        assertThat(s.parked()).isOne();
        assertThat(s.oldestAge()).isGreaterThanOrEqualTo(Duration.ofMinutes(59));

        sql("delete from outbox.outbox_message where shard >= 64");
        sql("alter table outbox.outbox_message add constraint outbox_message_shard_range check (shard < 64)");
        RelayStatus none = admin.status();
        assertThat(none.withoutLeaseRow().any()).isFalse();
        assertThat(none.withoutLeaseRow().fix()).isNull();
        assertThat(none.backlog()).isOne();
    }

    /**
     * Since PostgreSQL 14 a session of another database of the cluster does not hold back vacuum of this
     * database's tables: status does not blame it (it would fill the report's few session lines and push the
     * real holder out), and names a session of this database. A scratch database is created and dropped.
     * Before, every session of the cluster was listed.
     */
    @Test
    void statusBlamesOnlySessionsOfItsOwnDatabase() throws Exception {
        assumeTrue(serverVersion() >= 140000, "PostgreSQL 14 or later");
        statusWhileSnapshotsAreHeldHereAndElsewhere((s, elsewhere) -> {
            assertThat(s.xminHolders()).noneSatisfy(h -> assertThat(h.name()).contains("other-database-report"));
            assertThat(s.xminHolders()).anySatisfy(h -> {
                assertThat(h.kind()).isEqualTo("session");
                assertThat(h.name()).contains("this-database-report").contains("@" + db.name());
            });
        });
    }

    /** What a test checks in the status taken while the sessions hold their snapshots. */
    @FunctionalInterface
    private interface StatusCheck {
        void check(RelayStatus status, String elsewhere);
    }

    /**
     * Holds a snapshot in a session of a scratch database of the cluster ({@code other-database-report}) and
     * in one of this database ({@code this-database-report}), hands the status taken meanwhile and the
     * scratch database's name to {@code check}, then ends both transactions and drops the database.
     */
    private void statusWhileSnapshotsAreHeldHereAndElsewhere(StatusCheck check) throws Exception {
        String elsewhere = "xmin_elsewhere_" + UUID.randomUUID().toString().substring(0, 8);
        sql("create database " + elsewhere);
        try {
            try (Connection other = db.server().connect(elsewhere);
                    Connection here = db.connect()) {
                holdSnapshot(other, "other-database-report");
                holdSnapshot(here, "this-database-report");
                check.check(admin.status(), elsewhere);
                other.rollback();
                here.rollback();
            }
        } finally {
            try (Connection c = db.server().connectAdmin();
                    Statement st = c.createStatement()) {
                st.execute("drop database if exists " + elsewhere + " with (force)");
            }
        }
    }

    /**
     * Before PostgreSQL 14 a session of any database of the cluster holds back vacuum of this database's
     * tables: status names a session of another database holding a snapshot, with its database, state and
     * query, beside the one of this database, and no longer once its transaction ended. The counterpart of
     * {@link #statusBlamesOnlySessionsOfItsOwnDatabase} on older servers. A scratch database is created and
     * dropped.
     */
    @Test
    void beforePostgres14StatusBlamesSessionsOfOtherDatabases() throws Exception {
        assumeTrue(serverVersion() < 140000, "PostgreSQL older than 14");
        statusWhileSnapshotsAreHeldHereAndElsewhere((s, elsewhere) -> {
            assertThat(s.xminHolders()).anySatisfy(h -> {
                assertThat(h.kind()).isEqualTo("session");
                assertThat(h.name()).contains("other-database-report").contains("@" + elsewhere);
                assertThat(h.state()).isEqualTo("idle in transaction");
                assertThat(h.detail()).contains("pg_class");
                assertThat(h.since()).isNotNull();
                assertThat(h.xmin()).isPositive();
            });
            assertThat(s.xminHolders()).anySatisfy(h -> {
                assertThat(h.kind()).isEqualTo("session");
                assertThat(h.name()).contains("this-database-report").contains("@" + db.name());
            });
        });
        assertThat(admin.status().xminHolders())
                .as("no longer once its transaction ended")
                .noneSatisfy(h -> assertThat(h.name()).contains("other-database-report"));
    }

    /**
     * Before PostgreSQL 14 a prepared transaction of any database of the cluster holds back vacuum of this
     * database's tables too: status names one prepared in another database by its gid, with its owner and
     * database, and no longer once it was rolled back. On a private server with {@code
     * max_prepared_transactions} set.
     */
    @Test
    void beforePostgres14StatusBlamesTransactionsPreparedInOtherDatabases() throws Exception {
        assumeTrue(serverVersion() < 140000, "PostgreSQL older than 14");
        try (PrivatePostgres pg = PrivatePostgres.start(Map.of("max_prepared_transactions", "2"));
                TestDatabase here = TestDatabase.create(pg.server())) {
            pg.createDatabase("xmin_elsewhere");
            try (Connection other = pg.server().connect("xmin_elsewhere");
                    Statement st = other.createStatement()) {
                try (ResultSet rs = st.executeQuery("select current_setting('server_version_num')::int")) {
                    rs.next();
                    assumeTrue(rs.getInt(1) < 140000, "a private server older than PostgreSQL 14");
                }
                st.execute("begin; select pg_current_xact_id(); prepare transaction 'other-database-2pc'");
                RelayAdmin onPrivate = RelayAdmin.create(here.dataSource(), "outbox");
                RelayStatus s = onPrivate.status();
                assertThat(s.xminHolders()).anySatisfy(h -> {
                    assertThat(h.kind()).isEqualTo("prepared transaction");
                    assertThat(h.name()).isEqualTo("other-database-2pc");
                    assertThat(h.state()).isEqualTo("prepared");
                    assertThat(h.detail()).isEqualTo("owner postgres on xmin_elsewhere");
                    assertThat(h.since()).isNotNull();
                    assertThat(h.xmin()).isPositive();
                });
                st.execute("rollback prepared 'other-database-2pc'");
                assertThat(onPrivate.status().xminHolders())
                        .noneSatisfy(h -> assertThat(h.kind()).isEqualTo("prepared transaction"));
            }
        }
    }

    /**
     * A logical replication slot's catalog_xmin holds back vacuum of the system catalogs only, not of the
     * outbox table: status lists it apart from what holds the outbox's horizon, labelled so. Before, slots
     * were ranked by coalesce(xmin, catalog_xmin) among the outbox's holders. On a private server with
     * {@code wal_level=logical}.
     */
    @Test
    void aLogicalSlotsCatalogXminIsListedApart() throws Exception {
        try (PrivatePostgres pg = PrivatePostgres.start(Map.of("wal_level", "logical"));
                TestDatabase logical = TestDatabase.create(pg.server())) {
            try (Connection c = logical.connect();
                    Statement st = c.createStatement()) {
                st.execute("select pg_create_logical_replication_slot('status_cdc', 'pgoutput')");
            }
            RelayStatus s = RelayAdmin.create(logical.dataSource(), "outbox").status();
            assertThat(s.xminHolders()).noneSatisfy(h -> assertThat(h.name()).isEqualTo("status_cdc"));
            assertThat(s.catalogXminHolders()).singleElement().satisfies(h -> {
                assertThat(h.kind()).isEqualTo("replication slot");
                assertThat(h.name()).isEqualTo("status_cdc");
                assertThat(h.detail()).contains("catalog_xmin", "system catalogs only");
                assertThat(h.xmin()).isPositive();
            });
            try (Connection c = logical.connect();
                    Statement st = c.createStatement()) {
                st.execute("select pg_drop_replication_slot('status_cdc')");
            }
        }
    }

    @Test
    void parkedListsRowsWithTheirError() throws Exception {
        List<UUID> ids = append("a", "b", "c");
        park(ids.get(0), "InvalidTopicException: bad");
        park(ids.get(2), "RecordTooLargeException: big");
        List<ParkedMessage> parked = admin.parked(10);
        assertThat(parked).extracting(ParkedMessage::messageId).containsExactly(ids.get(0), ids.get(2));
        ParkedMessage first = parked.get(0);
        assertThat(first.topic()).isEqualTo("admin-test");
        assertThat(first.key()).isEqualTo("a");
        assertThat(first.attempts()).isEqualTo(1);
        assertThat(first.lastError()).isEqualTo("InvalidTopicException: bad");
        assertThat(first.payloadBytes()).isEqualTo(3);
        assertThat(first.parkedAt()).isNotNull();
        assertThat(admin.parked(1)).hasSize(1);
    }

    /** G7's repair path: a requeued row is publishable again, and the relays owning its shard are woken. */
    @Test
    void requeueClearsTheParkStateAndWakesTheRelay() throws Exception {
        List<UUID> ids = append("a", "b");
        park(ids.get(0), "X: y");
        long parked = outboxId(ids.get(0));
        long notParked = outboxId(ids.get(1));
        try (Connection listener = db.connect();
                Statement st = listener.createStatement()) {
            st.execute("listen \"" + Outbox.channel("outbox") + "\"");
            ParkedChange c = admin.requeue(List.of(parked, notParked, 999_999_999L));
            assertThat(c.ids()).containsExactly(parked);
            assertThat(c.notParked()).containsExactly(notParked, 999_999_999L);
            // returns as soon as the notification is there; the bound only matters on a loaded machine
            PGNotification[] notes = listener.unwrap(PGConnection.class).getNotifications(30_000);
            assertThat(notes).isNotEmpty();
            assertThat(notes[0].getParameter()).isEqualTo(String.valueOf(Shards.of("a", null, 64)));
        }
        Map<String, Object> row = row(parked);
        assertThat(row.get("parked_at")).isNull();
        assertThat(row.get("attempts")).isEqualTo(0);
        assertThat(row.get("last_error")).isNull();
        assertThat(admin.requeueAll().ids()).isEmpty();
    }

    @Test
    void purgeDeletesOnlyParkedRows() throws Exception {
        List<UUID> ids = append("a", "b", "c");
        park(ids.get(0), "X: y");
        park(ids.get(1), "X: y");
        long first = outboxId(ids.get(0));
        long publishable = outboxId(ids.get(2));
        ParkedChange one = admin.purge(List.of(first, publishable));
        assertThat(one.ids()).containsExactly(first);
        assertThat(one.notParked()).containsExactly(publishable);
        assertThat(row(publishable)).isNotNull();
        ParkedChange rest = admin.purgeAll();
        assertThat(rest.count()).isOne();
        assertThat(count("select count(*) from outbox.outbox_message")).isOne();
    }

    @Test
    void badArgumentsAreRefused() {
        assertThatThrownBy(() -> RelayAdmin.create(null, "outbox"))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("dataSource");
        assertThatThrownBy(() -> RelayAdmin.create(db.dataSource(), "Bad-Name"))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> admin.parked(0))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("limit");
        assertThatThrownBy(() -> admin.requeue(List.of())).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> admin.purge(null)).isInstanceOf(NullPointerException.class);
    }

    @Test
    void aMissingSchemaIsAnOutboxExceptionWithTheSqlState() {
        RelayAdmin missing = RelayAdmin.create(db.dataSource(), "no_such_schema");
        assertThatThrownBy(missing::status)
                .isInstanceOf(OutboxException.class)
                .hasMessageContaining("SQLState 42P01")
                .hasCauseInstanceOf(SQLException.class);
    }

    // ---------------------------------------------------------------- helpers

    private static void holdSnapshot(Connection c, String applicationName) throws SQLException {
        c.setAutoCommit(false);
        c.setTransactionIsolation(Connection.TRANSACTION_REPEATABLE_READ);
        try (Statement st = c.createStatement()) {
            st.execute("set application_name = '" + applicationName + "'");
            st.executeQuery("select count(*) from pg_class").close();
        }
    }

    private long serverVersion() throws Exception {
        return count("select current_setting('server_version_num')::int");
    }

    private List<UUID> append(String... keys) {
        List<OutboxMessage> messages = new ArrayList<>();
        for (String k : keys) {
            messages.add(OutboxMessage.of("admin-test", k, "Test", "text/plain", "abc".getBytes()));
        }
        return db.dsl().transactionResult(tx -> outbox.appendAll(tx.dsl(), messages));
    }

    private void park(UUID id, String error) throws Exception {
        sql("update outbox.outbox_message set parked_at = clock_timestamp(), attempts = 1, last_error = '" + error + "'"
                + " where message_id = '" + id + "'");
    }

    private long outboxId(UUID id) throws Exception {
        return count("select id from outbox.outbox_message where message_id = '" + id + "'");
    }

    private Map<String, Object> row(long id) throws Exception {
        try (Connection c = db.connect();
                Statement st = c.createStatement();
                ResultSet rs = st.executeQuery(
                        "select parked_at, attempts, last_error from outbox.outbox_message where id = " + id)) {
            if (!rs.next()) {
                return null;
            }
            Map<String, Object> m = new HashMap<>();
            m.put("parked_at", rs.getObject(1));
            m.put("attempts", rs.getObject(2));
            m.put("last_error", rs.getObject(3));
            return m;
        }
    }

    private long count(String sql) throws Exception {
        try (Connection c = db.connect();
                Statement st = c.createStatement();
                ResultSet rs = st.executeQuery(sql)) {
            rs.next();
            return rs.getLong(1);
        }
    }

    private void sql(String sql) throws Exception {
        try (Connection c = db.connect();
                Statement st = c.createStatement()) {
            st.execute(sql);
        }
    }
}
