package dev.outbox.migrations;

import static dev.outbox.migrations.jooq.Tables.IDEMPOTENCY_KEY;
import static dev.outbox.migrations.jooq.Tables.OUTBOX_MESSAGE;
import static dev.outbox.migrations.jooq.Tables.OUTBOX_SHARD_LEASE;
import static dev.outbox.migrations.jooq.Tables.PROCESSED_MESSAGE;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.outbox.migrations.jooq.tables.records.IdempotencyKeyRecord;
import dev.outbox.migrations.jooq.tables.records.OutboxMessageRecord;
import dev.outbox.migrations.jooq.tables.records.OutboxShardLeaseRecord;
import dev.outbox.migrations.jooq.tables.records.ProcessedMessageRecord;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestRole;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import javax.sql.DataSource;
import org.flywaydb.core.Flyway;
import org.flywaydb.core.api.FlywayException;
import org.jooq.DSLContext;
import org.jooq.JSONB;
import org.jooq.exception.DataAccessException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.postgresql.ds.PGSimpleDataSource;

class OutboxMigrationsIT {

    private static final List<String> OUTBOX_TABLES = List.of(
            "idempotency_key",
            "outbox_message",
            "outbox_relay_member",
            "outbox_schema_history",
            "outbox_shard_lease",
            "processed_message");

    @Test
    void migratesAnEmptyDatabaseIntoTheDefaultSchema() throws SQLException {
        try (TestDatabase db = TestDatabase.createEmpty()) {
            MigrationResult result = OutboxMigrations.migrate(db.dataSource());

            assertThat(result).isEqualTo(new MigrationResult("outbox", 8, "8"));
            try (Connection c = db.connect()) {
                assertThat(tables(c, "outbox")).containsExactlyElementsOf(OUTBOX_TABLES);
                assertThat(strings(
                                c,
                                "select shard || ':' || coalesce(owner, '-') || ':' || epoch || ':' || (lease_until = timestamptz '1970-01-01 00:00:00+00')"
                                        + " from outbox.outbox_shard_lease order by shard"))
                        .hasSize(64)
                        .startsWith("0:-:0:true")
                        .endsWith("63:-:0:true");
                assertThat(strings(
                                c,
                                "select version || ' ' || description from outbox.outbox_schema_history"
                                        + " where version is not null order by installed_rank"))
                        .containsExactly(
                                "1 outbox message",
                                "2 outbox shard lease",
                                "3 processed message",
                                "4 idempotency key",
                                "5 outbox message shard range",
                                "6 outbox message keep pages",
                                "7 outbox wait for change",
                                "8 outbox message parked key");
                assertThat(strings(
                                c,
                                "select pg_get_constraintdef(oid) from pg_constraint"
                                        + " where conname = 'outbox_message_shard_range'"))
                        .containsExactly("CHECK ((shard < 64))");
                try (Statement st = c.createStatement()) {
                    assertThatThrownBy(() -> st.execute("insert into outbox.outbox_message"
                                    + " (message_id, shard, topic, message_type, content_type)"
                                    + " values (gen_random_uuid(), 64, 'orders', 'OrderPlaced', 'application/json')"))
                            .as("a row for a shard the install does not have")
                            .hasMessageContaining("outbox_message_shard_range");
                }
                assertThat(
                                strings(
                                        c,
                                        "select unnest(reloptions) from pg_class where oid = 'outbox.outbox_message'::regclass"))
                        .contains("fillfactor=90", "autovacuum_vacuum_scale_factor=0");
                assertThat(strings(
                                c,
                                "select indexname from pg_indexes where schemaname = 'outbox'"
                                        + " and tablename = 'outbox_message' order by indexname"))
                        .containsExactly(
                                "outbox_message_message_id_key",
                                "outbox_message_parked_key_idx",
                                "outbox_message_pkey",
                                "outbox_message_publishable_idx");
                assertThat(strings(c, "select tablename from pg_tables where schemaname = 'public'"))
                        .isEmpty();
            }
        }
    }

    @Test
    void migratesIntoACustomSchemaAndTheGeneratedClassesFollowIt() throws SQLException {
        try (TestDatabase db = TestDatabase.createEmpty()) {
            DataSource ds = db.dataSource();
            assertThat(OutboxMigrations.migrate(ds, "tenant_a", 8).migrationsExecuted())
                    .isEqualTo(8);

            try (Connection c = db.connect()) {
                assertThat(tables(c, "tenant_a")).containsExactlyElementsOf(OUTBOX_TABLES);
                assertThat(strings(
                                c, "select schema_name from information_schema.schemata where schema_name = 'outbox'"))
                        .isEmpty();
                assertThat(
                                strings(
                                        c,
                                        "select min(shard) || '..' || max(shard) || ' ' || count(*) from tenant_a.outbox_shard_lease"))
                        .containsExactly("0..7 8");
            }

            DSLContext dsl = OutboxMigrations.dsl(ds, "tenant_a");
            UUID messageId = UUID.randomUUID();
            byte[] payload = "{\"orderId\":42}".getBytes(StandardCharsets.UTF_8);
            OutboxMessageRecord inserted = dsl.insertInto(OUTBOX_MESSAGE)
                    .set(OUTBOX_MESSAGE.MESSAGE_ID, messageId)
                    .set(OUTBOX_MESSAGE.SHARD, 5)
                    .set(OUTBOX_MESSAGE.TOPIC, "orders")
                    .set(OUTBOX_MESSAGE.MESSAGE_KEY, "order-42")
                    .set(OUTBOX_MESSAGE.MESSAGE_TYPE, "OrderPlaced")
                    .set(OUTBOX_MESSAGE.CONTENT_TYPE, "application/json")
                    .set(
                            OUTBOX_MESSAGE.HEADERS,
                            JSONB.valueOf(
                                    "{\"traceparent\":\"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\"}"))
                    .set(OUTBOX_MESSAGE.PAYLOAD, payload)
                    .returning()
                    .fetchOne();
            assertThat(inserted).isNotNull();
            assertThat(inserted.getId()).isPositive();

            OutboxMessageRecord tombstone = dsl.newRecord(OUTBOX_MESSAGE);
            tombstone.setMessageId(UUID.randomUUID());
            tombstone.setShard(5);
            tombstone.setTopic("orders");
            tombstone.setMessageKey("order-42");
            tombstone.setMessageType("OrderDeleted");
            tombstone.setContentType("application/json");
            tombstone.store();
            assertThat(tombstone.getId()).isGreaterThan(inserted.getId());

            List<OutboxMessageRecord> read = dsl.selectFrom(OUTBOX_MESSAGE)
                    .where(OUTBOX_MESSAGE.SHARD.eq(5).and(OUTBOX_MESSAGE.PARKED_AT.isNull()))
                    .orderBy(OUTBOX_MESSAGE.ID)
                    .fetch();
            assertThat(read).hasSize(2);
            OutboxMessageRecord first = read.get(0);
            assertThat(first.getMessageId()).isEqualTo(messageId);
            assertThat(first.getPayload()).isEqualTo(payload);
            assertThat(first.getHeaders().data()).contains("traceparent");
            assertThat(first.getAttempts()).isZero();
            assertThat(first.getCreatedAt()).isBefore(OffsetDateTime.now().plusMinutes(1));
            assertThat(read.get(1).getPayload()).isNull();
            assertThat(read.get(1).getHeaders().data()).isEqualTo("{}");

            assertThatThrownBy(() -> dsl.insertInto(OUTBOX_MESSAGE)
                            .set(OUTBOX_MESSAGE.MESSAGE_ID, UUID.randomUUID())
                            .set(OUTBOX_MESSAGE.SHARD, 1)
                            .set(OUTBOX_MESSAGE.TOPIC, "")
                            .set(OUTBOX_MESSAGE.MESSAGE_TYPE, "T")
                            .set(OUTBOX_MESSAGE.CONTENT_TYPE, "application/json")
                            .execute())
                    .isInstanceOf(DataAccessException.class)
                    .hasMessageContaining("outbox_message_topic_check");

            OutboxShardLeaseRecord lease = dsl.fetchOne(OUTBOX_SHARD_LEASE, OUTBOX_SHARD_LEASE.SHARD.eq(5));
            assertThat(lease).isNotNull();
            assertThat(lease.getLeaseUntil()).isAtSameInstantAs(OffsetDateTime.parse("1970-01-01T00:00:00Z"));
            assertThat(lease.getOwner()).isNull();
            lease.setOwner("relay-1");
            lease.setEpoch(lease.getEpoch() + 1);
            lease.setLeaseUntil(OffsetDateTime.now().plusSeconds(30));
            assertThat(lease.update()).isEqualTo(1);

            ProcessedMessageRecord processed = dsl.newRecord(PROCESSED_MESSAGE);
            processed.setConsumer("billing");
            processed.setMessageId(messageId);
            processed.store();
            assertThat(dsl.insertInto(PROCESSED_MESSAGE)
                            .set(PROCESSED_MESSAGE.CONSUMER, "billing")
                            .set(PROCESSED_MESSAGE.MESSAGE_ID, messageId)
                            .onConflictDoNothing()
                            .execute())
                    .isZero();

            IdempotencyKeyRecord key = dsl.newRecord(IDEMPOTENCY_KEY);
            key.setScope("tenant-1 POST /orders");
            key.setIdemKey("8e03978e-40d5-43e8-bc93-6894a57f9324");
            key.setFingerprint("sha256:abc");
            key.setExpiresAt(OffsetDateTime.now().plusHours(24));
            key.store();

            try (Connection c = db.connect()) {
                assertThat(strings(c, "select owner || ':' || epoch from tenant_a.outbox_shard_lease where shard = 5"))
                        .containsExactly("relay-1:1");
                assertThat(strings(c, "select consumer || ':' || outcome from tenant_a.processed_message"))
                        .containsExactly("billing:HANDLED");
                assertThat(strings(c, "select scope from tenant_a.idempotency_key where response_status is null"))
                        .containsExactly("tenant-1 POST /orders");
                assertThat(strings(c, "select count(*) from tenant_a.outbox_message"))
                        .containsExactly("2");
            }
        }
    }

    @Test
    void migratingAgainAppliesNothingAndChangesNothing() throws SQLException {
        try (TestDatabase db = TestDatabase.createEmpty()) {
            DataSource ds = db.dataSource();
            assertThat(OutboxMigrations.migrate(ds).migrationsExecuted()).isEqualTo(8);
            try (Connection c = db.connect();
                    Statement s = c.createStatement()) {
                s.executeUpdate("update outbox.outbox_shard_lease set owner = 'relay-1', epoch = 7,"
                        + " lease_until = clock_timestamp() + interval '1 minute' where shard = 3");
                s.executeUpdate(
                        "insert into outbox.outbox_message (message_id, shard, topic, message_type, content_type)"
                                + " values (gen_random_uuid(), 3, 'orders', 'OrderPlaced', 'application/json')");
            }
            List<String> before = snapshot(db, "outbox");

            MigrationResult again = OutboxMigrations.migrate(ds);
            MigrationResult otherShardCount = OutboxMigrations.migrate(ds, "outbox", 8);

            assertThat(again).isEqualTo(new MigrationResult("outbox", 0, "8"));
            assertThat(again.upToDate()).isTrue();
            assertThat(otherShardCount).isEqualTo(new MigrationResult("outbox", 0, "8"));
            assertThat(snapshot(db, "outbox")).isEqualTo(before);
        }
    }

    /**
     * V8 on a schema at V7 that holds parked rows: the index of parked rows by key replaces V1's, with the rows
     * already parked in it; and where an operator built it by hand beforehand ({@code create index concurrently},
     * as the script says for a large table), the script keeps that one and still drops V1's.
     */
    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void anUpgradeFromV7IndexesTheParkedRowsByKey(boolean builtByHand) throws SQLException {
        try (TestDatabase db = TestDatabase.createEmpty()) {
            DataSource ds = db.dataSource();
            assertThat(OutboxMigrations.configure(ds, "outbox", 4)
                            .target("7")
                            .load()
                            .migrate()
                            .migrationsExecuted)
                    .isEqualTo(7);
            try (Connection c = db.connect();
                    Statement s = c.createStatement()) {
                s.executeUpdate(
                        "insert into outbox.outbox_message (message_id, shard, topic, message_key, message_type,"
                                + " content_type, parked_at) select gen_random_uuid(), i % 4, 'orders', 'k-' || i, 'T', 'c',"
                                + " case when i % 3 = 0 then now() end from generate_series(1, 300) i");
                if (builtByHand) {
                    s.execute("create index concurrently outbox_message_parked_key_idx on outbox.outbox_message"
                            + " (shard, message_key, id) where parked_at is not null");
                }
            }

            assertThat(OutboxMigrations.migrate(ds).migrationsExecuted()).isEqualTo(1);

            try (Connection c = db.connect()) {
                assertThat(strings(
                                c,
                                "select indexdef from pg_indexes where schemaname = 'outbox'"
                                        + " and indexname like 'outbox_message_parked%'"))
                        .containsExactly("CREATE INDEX outbox_message_parked_key_idx ON outbox.outbox_message"
                                + " USING btree (shard, message_key, id) WHERE (parked_at IS NOT NULL)");
                // the rows parked before the upgrade are in it: a count of one shard's read through the index
                try (Statement s = c.createStatement()) {
                    s.execute("set enable_seqscan = off");
                    s.execute("set enable_bitmapscan = off");
                }
                String parkedOfShard1 = "select count(*) from outbox.outbox_message where parked_at is not null"
                        + " and shard = 1 and message_key >= ''";
                assertThat(String.join("\n", strings(c, "explain " + parkedOfShard1)))
                        .contains("outbox_message_parked_key_idx");
                assertThat(strings(c, parkedOfShard1)).containsExactly("25");
            }
        }
    }

    /**
     * F4: V5's shard-range guard, applied as an upgrade from V4, bounds the installed shard count (16 or 128), not
     * the default that the upgrading call passes.
     */
    @ParameterizedTest
    @ValueSource(ints = {16, 128})
    void anUpgradeFromV4GuardsTheInstalledShardCount(int installed) throws SQLException {
        try (TestDatabase db = TestDatabase.createEmpty()) {
            DataSource ds = db.dataSource();
            assertThat(OutboxMigrations.configure(ds, "outbox", installed)
                            .target("4")
                            .load()
                            .migrate()
                            .migrationsExecuted)
                    .isEqualTo(4);
            try (Connection c = db.connect();
                    Statement s = c.createStatement()) {
                s.executeUpdate(
                        "insert into outbox.outbox_message (message_id, shard, topic, message_type, content_type)"
                                + " values (gen_random_uuid(), " + (installed - 1)
                                + ", 'orders', 'OrderPlaced', 'application/json')");
            }

            assertThat(OutboxMigrations.migrate(ds).migrationsExecuted())
                    .as("V5 with the default 64, V6, V7 and V8")
                    .isEqualTo(4);

            try (Connection c = db.connect();
                    Statement s = c.createStatement()) {
                assertThat(strings(
                                c,
                                "select pg_get_constraintdef(oid) from pg_constraint"
                                        + " where conname = 'outbox_message_shard_range'"))
                        .containsExactly("CHECK ((shard < " + installed + "))");
                s.executeUpdate(
                        "insert into outbox.outbox_message (message_id, shard, topic, message_type, content_type)"
                                + " values (gen_random_uuid(), " + (installed - 1)
                                + ", 'orders', 'OrderPlaced', 'application/json')");
                assertThatThrownBy(() -> s.executeUpdate("insert into outbox.outbox_message (message_id, shard, topic,"
                                + " message_type, content_type) values (gen_random_uuid(), " + installed
                                + ", 'orders', 'OrderPlaced', 'application/json')"))
                        .isInstanceOf(SQLException.class)
                        .hasMessageContaining("outbox_message_shard_range");
            }
        }
    }

    @Test
    void anExistingSchemaWithOtherTablesIsAccepted() throws SQLException {
        try (TestDatabase db = TestDatabase.createEmpty()) {
            try (Connection c = db.connect();
                    Statement s = c.createStatement()) {
                s.execute("create table public.customer (id bigint primary key)");
            }
            MigrationResult result = OutboxMigrations.migrate(db.dataSource(), "public", 2);

            assertThat(result.migrationsExecuted()).isEqualTo(8);
            try (Connection c = db.connect()) {
                assertThat(tables(c, "public")).contains("customer").containsAll(OUTBOX_TABLES);
                assertThat(strings(c, "select count(*) from public.outbox_shard_lease"))
                        .containsExactly("2");
            }
        }
    }

    @Test
    void theScriptsRunUnderTheApplicationsOwnFlyway() throws SQLException {
        try (TestDatabase db = TestDatabase.createEmpty()) {
            Flyway flyway = Flyway.configure()
                    .dataSource(db.dataSource())
                    .locations(OutboxMigrations.LOCATION)
                    .placeholders(OutboxMigrations.placeholders("events", 16))
                    .load();

            assertThat(flyway.migrate().migrationsExecuted).isEqualTo(8);
            try (Connection c = db.connect()) {
                assertThat(tables(c, "events"))
                        .containsExactly(
                                "idempotency_key",
                                "outbox_message",
                                "outbox_relay_member",
                                "outbox_shard_lease",
                                "processed_message");
                assertThat(tables(c, "public")).containsExactly("flyway_schema_history");
                assertThat(strings(c, "select count(*) from events.outbox_shard_lease"))
                        .containsExactly("16");
            }
        }
    }

    @Test
    void aMissingPlaceholderIsNamedByFlyway() throws SQLException {
        try (TestDatabase db = TestDatabase.createEmpty()) {
            Flyway flyway = Flyway.configure()
                    .dataSource(db.dataSource())
                    .locations(OutboxMigrations.LOCATION)
                    .load();

            assertThatThrownBy(flyway::migrate)
                    .isInstanceOf(FlywayException.class)
                    .hasMessageContaining("outbox_schema");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"0", "4097", "many", "-5", "99999999999"})
    void anInvalidShardCountPlaceholderIsRefusedByTheScript(String shards) throws SQLException {
        try (TestDatabase db = TestDatabase.createEmpty()) {
            Flyway flyway = Flyway.configure()
                    .dataSource(db.dataSource())
                    .locations(OutboxMigrations.LOCATION)
                    .placeholders(Map.of("outbox_schema", "outbox", "outbox_shards", shards))
                    .load();

            assertThatThrownBy(flyway::migrate)
                    .isInstanceOf(FlywayException.class)
                    .hasMessageContaining("outbox_shards must be an integer between 1 and 4096, got '" + shards + "'");
            try (Connection c = db.connect()) {
                assertThat(tables(c, "outbox")).containsExactly("outbox_message");
            }
        }
    }

    /**
     * The installed count is 0 only when there is no install to count (or no database to ask): a role that cannot
     * read the shard table is told so, rather than given 0, which would let {@code configure} bound an upgrade's V5
     * by the caller's count and the starter skip its shard check.
     */
    @Test
    void theInstalledShardsAreCountedOrTheMissingGrantIsNamed() throws SQLException {
        try (TestDatabase db = TestDatabase.createEmpty()) {
            assertThat(OutboxMigrations.installedShards(db.dataSource(), "outbox"))
                    .as("not installed yet")
                    .isZero();
            OutboxMigrations.migrate(db.dataSource(), "outbox", 16);
            assertThat(OutboxMigrations.installedShards(db.dataSource(), "outbox"))
                    .isEqualTo(16);

            try (TestRole producer = TestRole.create(
                    db,
                    "outbox_no_lease",
                    "grant usage on schema outbox to %s",
                    "grant insert on outbox.outbox_message to %s")) {
                DataSource ds = producer.dataSource(1);
                assertThatThrownBy(() -> OutboxMigrations.installedShards(ds, "outbox"))
                        .isInstanceOf(OutboxMigrationException.class)
                        .hasMessageContaining("SQLState 42501")
                        .hasMessageContaining("grant select on outbox.outbox_shard_lease")
                        .hasCauseInstanceOf(SQLException.class);
                assertThatThrownBy(() -> OutboxMigrations.configure(ds, "outbox", 64))
                        .isInstanceOf(OutboxMigrationException.class)
                        .hasMessageContaining("grant select on outbox.outbox_shard_lease");
            }
        }
    }

    @Test
    void aConnectionFailureNamesTheUrl() {
        PGSimpleDataSource ds = new PGSimpleDataSource();
        ds.setUrl("jdbc:postgresql://127.0.0.1:1/postgres");
        ds.setUser("postgres");
        ds.setConnectTimeout(5);

        assertThatThrownBy(() -> OutboxMigrations.migrate(ds))
                .isInstanceOf(OutboxMigrationException.class)
                .hasMessageContaining("jdbc:postgresql://127.0.0.1:1/postgres")
                .hasMessageContaining("Check that PostgreSQL is running")
                .hasCauseInstanceOf(SQLException.class);
        assertThat(OutboxMigrations.installedShards(ds, "outbox"))
                .as("nothing to count; the migration names the URL")
                .isZero();
    }

    private static List<String> tables(Connection c, String schema) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(
                "select table_name from information_schema.tables" + " where table_schema = ? order by table_name")) {
            ps.setString(1, schema);
            return rows(ps.executeQuery());
        }
    }

    private static List<String> strings(Connection c, String sql) throws SQLException {
        try (Statement s = c.createStatement()) {
            return rows(s.executeQuery(sql));
        }
    }

    private static List<String> rows(ResultSet rs) throws SQLException {
        try (rs) {
            List<String> rows = new ArrayList<>();
            while (rs.next()) {
                rows.add(rs.getString(1));
            }
            return rows;
        }
    }

    /** Every row of every outbox table, the history included, as text. */
    private static List<String> snapshot(TestDatabase db, String schema) throws SQLException {
        List<String> all = new ArrayList<>();
        try (Connection c = db.connect()) {
            for (String table : OUTBOX_TABLES) {
                all.add("-- " + table);
                all.addAll(strings(c, "select t::text from " + schema + "." + table + " t order by 1"));
            }
        }
        return all;
    }
}
