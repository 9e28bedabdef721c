package dev.outbox.relay.admin;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.outbox.core.Outbox;
import dev.outbox.core.OutboxMessage;
import dev.outbox.relay.admin.Doctor.Verdict;
import dev.outbox.testkit.PrivatePostgres;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import dev.outbox.testkit.TestRole;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeSet;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import javax.sql.DataSource;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.postgresql.PGConnection;
import org.postgresql.PGProperty;
import org.postgresql.ds.PGSimpleDataSource;
import org.postgresql.replication.LogSequenceNumber;
import org.postgresql.replication.PGReplicationStream;

/**
 * {@link Doctor} on real PostgreSQL and a real (in-JVM) Kafka broker: each failure mode is
 * introduced on purpose into an otherwise healthy database and must be reported with its evidence,
 * and the healthy database must pass. Guards the operational side of G4 (processed ids outlive
 * redelivery), G5 (unique key, stored responses, nothing stuck in flight) and G7 (parked rows are
 * visible).
 */
@Tag("integration")
class DoctorIT {
    /** retention.ms 6d and segment.ms 1d: a record is deleted within 7 days, the consumer's default retention */
    private static final Map<String, String> HEALTHY_TOPIC = Map.of(
            "retention.ms", String.valueOf(Duration.ofDays(6).toMillis()),
            "segment.ms", String.valueOf(Duration.ofDays(1).toMillis()));

    /** Settings of a private server that leave database-durability only its standbys to judge. */
    private static final Map<String, String> DURABLE =
            Map.of("wal_level", "replica", "fsync", "on", "full_page_writes", "on", "synchronous_commit", "on");

    private final TestKafka kafka = RealServices.kafka();
    private TestDatabase db;
    private String topic;
    private String consumer;

    @BeforeEach
    void healthyDeployment() throws Exception {
        db = TestDatabase.create();
        topic = TestKafka.uniqueTopic("doctor-orders");
        consumer = TestKafka.uniqueTopic("payments"); // the shared broker keeps consumer groups between tests
        // deleted within the consumer's default 7-day retention, whole segments included
        kafka.createTopic(topic, 1, HEALTHY_TOPIC);
        Outbox outbox = Outbox.builder().build();
        db.dsl()
                .transaction(tx ->
                        outbox.append(tx.dsl(), OutboxMessage.of(topic, "k1", "Test", "text/plain", "abc".getBytes())));
        sql(
                "insert into outbox.idempotency_key (scope, idem_key, fingerprint, response_status, response_headers, response_body,"
                        + " expires_at) values ('anonymous POST /orders', 'k-1', 'f', 201, '{}', '\\x7b7d', clock_timestamp() + interval '24 hours')");
        sql("insert into outbox.processed_message (consumer, message_id) values ('" + consumer
                + "', gen_random_uuid())");
    }

    @AfterEach
    void drop() {
        db.close();
    }

    private Doctor.Builder doctor() {
        return Doctor.builder()
                .dataSource(db.dataSource())
                .lockTimeout(Duration.ofSeconds(1))
                .consumer(consumer, topic)
                .kafkaProperties(Map.of("bootstrap.servers", kafka.bootstrapServers()));
    }

    /** @return whether the test server itself commits durably: what the database-durability check reads */
    private boolean serverIsDurable() throws Exception {
        try (Connection c = db.connect();
                Statement st = c.createStatement();
                var rs = st.executeQuery("select bool_and(setting <> 'off') from pg_settings"
                        + " where name in ('fsync', 'full_page_writes', 'synchronous_commit')")) {
            rs.next();
            return rs.getBoolean(1);
        }
    }

    private void sql(String statement) throws Exception {
        try (Connection c = db.connect();
                Statement st = c.createStatement()) {
            st.execute(statement);
        }
    }

    @Test
    void aHealthyDeploymentPasses() throws Exception {
        Doctor.Report report = doctor().build().run();

        assertThat(report.failed()).as("%s", report).isFalse();
        assertThat(report.checks())
                .filteredOn(c -> c.verdict() != Verdict.BUILD_TIME)
                .filteredOn(c -> !c.id().endsWith("-durability"))
                .allSatisfy(c ->
                        assertThat(c.verdict()).as(c.id() + ": " + c.summary()).isEqualTo(Verdict.PASS));
        // one broker: one copy of each record, a development setup
        Doctor.Check delivery = report.check("delivery-durability");
        assertThat(delivery.verdict()).isEqualTo(Verdict.WARN);
        assertThat(delivery.evidence())
                .containsExactly("topic " + topic + ": replication factor 1, min.insync.replicas 1,"
                        + " unclean.leader.election.enable false: one copy of each record: a broker's lost disk"
                        + " loses acknowledged records (development only)");
        // the test cluster's own settings decide: the embedded one runs without fsync
        Doctor.Check database = report.check("database-durability");
        assertThat(database.verdict()).as("%s", database).isEqualTo(serverIsDurable() ? Verdict.PASS : Verdict.WARN);
        assertThat(report.check("topic-retention").evidence())
                .anySatisfy(e -> assertThat(e)
                        .contains("consumer " + consumer + " (retention 7d) reads " + topic
                                + " (retention.ms 6d, segment.ms 1d"));
        assertThat(report.check("unique-constraints").evidence())
                .anySatisfy(e -> assertThat(e).contains("idempotency_key_pkey (scope, idem_key) valid"));
        assertThat(report.checks())
                .filteredOn(c -> c.verdict() == Verdict.BUILD_TIME)
                .extracting(Doctor.Check::id)
                .containsExactly(
                        "client-retry-budget",
                        "key-per-operation",
                        "listener-dedup",
                        "insert-first",
                        "endpoint-coverage");
    }

    @Test
    void aDroppedUniqueConstraintFails() throws Exception {
        sql("alter table outbox.idempotency_key drop constraint idempotency_key_pkey");
        sql("alter table outbox.processed_message drop constraint processed_message_pkey");

        Doctor.Check check = doctor().build().run().check("unique-constraints");

        assertThat(check.verdict()).isEqualTo(Verdict.FAIL);
        assertThat(check.summary())
                .contains("outbox.idempotency_key (idem_key, scope)", "outbox.processed_message (consumer, message_id)")
                .doesNotContain("outbox_message");
        assertThat(check.evidence()).contains("outbox.idempotency_key: no unique index");
        assertThat(check.fix()).contains("idempotency_key_pkey (scope, idem_key)");
    }

    @Test
    void anInvalidUniqueIndexFails() throws Exception {
        // what a failed CREATE UNIQUE INDEX CONCURRENTLY leaves behind
        sql("alter table outbox.processed_message drop constraint processed_message_pkey");
        sql("create unique index processed_message_again on outbox.processed_message (consumer, message_id)");
        sql("update pg_index set indisvalid = false where indexrelid = 'outbox.processed_message_again'::regclass");

        Doctor.Check check = doctor().build().run().check("unique-constraints");

        assertThat(check.verdict()).isEqualTo(Verdict.FAIL);
        assertThat(check.evidence())
                .anySatisfy(e -> assertThat(e).contains("processed_message_again (consumer, message_id) INVALID"));
    }

    /**
     * A unique index counts by its key columns alone: one with an expression among its keys (unique per
     * lower(fingerprint), not per key) or a deferrable one (which INSERT ... ON CONFLICT cannot use) fails;
     * before, the expression was dropped from the columns read, and both passed.
     */
    @Test
    void aUniqueIndexWithAnExpressionOrDeferrableFails() throws Exception {
        sql("alter table outbox.idempotency_key drop constraint idempotency_key_pkey");
        sql("create unique index idempotency_key_by_fingerprint on outbox.idempotency_key"
                + " (scope, idem_key, lower(fingerprint))");
        sql("alter table outbox.processed_message drop constraint processed_message_pkey");
        sql("alter table outbox.processed_message add constraint processed_message_pkey"
                + " primary key (consumer, message_id) deferrable");

        Doctor.Check check = doctor().build().run().check("unique-constraints");

        assertThat(check.verdict()).as("%s", check).isEqualTo(Verdict.FAIL);
        assertThat(check.summary())
                .contains("outbox.idempotency_key (idem_key, scope)", "outbox.processed_message (consumer, message_id)")
                .doesNotContain("outbox_message");
        assertThat(check.evidence())
                .anySatisfy(e -> assertThat(e)
                        .contains("idempotency_key_by_fingerprint (scope, idem_key, lower(fingerprint)) valid")
                        .contains("ON AN EXPRESSION"))
                .anySatisfy(e -> assertThat(e)
                        .contains("processed_message_pkey (consumer, message_id) valid")
                        .contains("DEFERRABLE (INSERT ... ON CONFLICT cannot use it)"));
        assertThat(check.fix()).contains("not DEFERRABLE");
    }

    /**
     * INCLUDE columns are carried by a unique index, not part of its key: {@code unique (message_id)
     * include (topic)} decides duplicates of message_id as well as the migrations' constraint, and passes.
     * Before, the included column was read as a key column and the healthy index failed.
     */
    @Test
    void aUniqueIndexWithIncludedColumnsPasses() throws Exception {
        sql("alter table outbox.outbox_message drop constraint outbox_message_message_id_key");
        sql("alter table outbox.outbox_message add constraint outbox_message_message_id_key"
                + " unique (message_id) include (topic)");

        Doctor.Check check = doctor().build().run().check("unique-constraints");

        assertThat(check.verdict()).as("%s", check).isEqualTo(Verdict.PASS);
        assertThat(check.evidence())
                .contains("outbox.outbox_message: unique index outbox.outbox_message_message_id_key (message_id)"
                        + " include (topic) valid");
    }

    /**
     * A doctor run as a role without USAGE on the outbox schema (PostgreSQL refuses even the catalog look-ups
     * by name, SQLState 42501) gets a report: unique-constraints and outbox-schema fail with the GRANT to give,
     * as the checks that read the tables do. Before, the run stopped with an exception and no report.
     */
    @Test
    void aRoleWithoutUsageOnTheSchemaGetsAReportOfFailures() throws Exception {
        try (TestRole stranger = TestRole.create(db, "doctor_no_usage")) {
            Doctor.Report report =
                    Doctor.builder().dataSource(stranger.dataSource(2)).build().run();

            assertThat(report.failed()).isTrue();
            for (String id : List.of("unique-constraints", "outbox-schema", "key-expiry")) {
                Doctor.Check check = report.check(id);
                assertThat(check.verdict()).as("%s", check).isEqualTo(Verdict.FAIL);
                assertThat(check.summary()).contains("SQLState 42501");
                assertThat(check.evidence()).singleElement().asString().contains("permission denied for schema outbox");
                assertThat(check.fix()).contains("GRANT USAGE ON SCHEMA outbox");
            }
        }
    }

    @Test
    void staleKeysAndProcessedIdsFail() throws Exception {
        sql(
                "insert into outbox.idempotency_key (scope, idem_key, fingerprint, response_status, response_headers, response_body,"
                        + " created_at, expires_at) values ('s', 'old', 'f', 200, '{}', '', clock_timestamp() - interval '3 days',"
                        + " clock_timestamp() - interval '2 days')");
        sql(
                "insert into outbox.idempotency_key (scope, idem_key, fingerprint, response_status, response_headers, response_body,"
                        + " expires_at) values ('s', 'forever', 'f', 200, '{}', '', 'infinity')");
        sql("insert into outbox.processed_message (consumer, message_id, processed_at)" + " values ('" + consumer
                + "', gen_random_uuid(), clock_timestamp() - interval '9 days')");

        Doctor.Report report = doctor().build().run();

        assertThat(report.failed()).isTrue();
        Doctor.Check keys = report.check("key-expiry");
        assertThat(keys.verdict()).isEqualTo(Verdict.FAIL);
        assertThat(keys.summary())
                .contains("1 expired key(s) not purged within 2h", "1 key(s) expire later than the ttl allows");
        assertThat(keys.evidence())
                .anySatisfy(e -> assertThat(e).startsWith("oldest expired key expired 2d"))
                .contains("some key never expires (expires_at infinity)");
        Doctor.Check processed = report.check("processed-expiry");
        assertThat(processed.verdict()).isEqualTo(Verdict.FAIL);
        assertThat(processed.evidence())
                .anySatisfy(e -> assertThat(e).startsWith("consumer " + consumer + ": oldest id 9d"));
        // a consumer given a longer retention is healthy with the same rows
        assertThat(doctor().consumerRetention(consumer, Duration.ofDays(10))
                        .build()
                        .run()
                        .check("processed-expiry")
                        .verdict())
                .isEqualTo(Verdict.PASS);
    }

    @Test
    void aCompletedKeyWithoutItsResponseFails() throws Exception {
        sql("insert into outbox.idempotency_key (scope, idem_key, fingerprint, response_status, expires_at)"
                + " values ('s', 'no-body', 'f', 201, clock_timestamp() + interval '1 hour')");

        Doctor.Check check = doctor().build().run().check("stored-responses");

        assertThat(check.verdict()).isEqualTo(Verdict.FAIL);
        assertThat(check.evidence()).containsExactly("scope s, key no-body: status 201 without body or headers");
    }

    @Test
    void aKeyStuckInFlightFails_committedOrHeldByAnOpenTransaction() throws Exception {
        sql(
                "insert into outbox.idempotency_key (scope, idem_key, fingerprint, created_at, expires_at)"
                        + " values ('s', 'stuck', 'f', clock_timestamp() - interval '1 minute', clock_timestamp() + interval '1 hour')");
        try (Connection holder = db.connect()) {
            holder.setAutoCommit(false);
            try (Statement st = holder.createStatement()) {
                st.execute("insert into outbox.idempotency_key (scope, idem_key, fingerprint, expires_at)"
                        + " values ('s', 'held', 'f', clock_timestamp() + interval '1 hour')");
            }
            await().atMost(30, TimeUnit.SECONDS).untilAsserted(() -> {
                Doctor.Check check = doctor().build().run().check("in-flight");
                assertThat(check.verdict()).isEqualTo(Verdict.FAIL);
                assertThat(check.summary())
                        .contains("committed key(s) without a response", "1 transaction(s) holding keys");
                assertThat(check.evidence())
                        .anySatisfy(
                                e -> assertThat(e).startsWith("committed without a response: scope s, key stuck, 1m"));
                assertThat(check.evidence())
                        .anySatisfy(e -> assertThat(e)
                                .startsWith("transaction writing keys for")
                                .contains("insert into outbox.idempotency_key"));
            });
            holder.rollback();
        }
    }

    /**
     * A doctor run as a role that cannot see other roles' transactions (no pg_read_all_stats) does not pass
     * in-flight while another role's transaction holds a key: it warns that it cannot see how long. Before, the
     * holder's hidden transaction start left it out of the check, which passed.
     */
    @Test
    void aKeyHeldByAnotherRolesTransactionIsAWarningForARoleThatCannotSeeIt() throws Exception {
        try (TestRole blind = TestRole.create(
                        db,
                        "doctor_blind",
                        "grant usage on schema outbox to %s",
                        "grant select on all tables in schema outbox to %s");
                Connection holder = db.connect()) {
            holder.setAutoCommit(false);
            try (Statement st = holder.createStatement()) {
                st.execute("insert into outbox.idempotency_key (scope, idem_key, fingerprint, expires_at)"
                        + " values ('s', 'held-unseen', 'f', clock_timestamp() + interval '1 hour')");
            }
            Thread.sleep(1_500); // longer than the lock timeout the check compares with
            Doctor.Check check = Doctor.builder()
                    .dataSource(blind.dataSource(2))
                    .lockTimeout(Duration.ofSeconds(1))
                    .build()
                    .run()
                    .check("in-flight");
            assertThat(check.verdict()).isEqualTo(Verdict.WARN);
            assertThat(check.summary()).contains("1 transaction(s) of other roles were writing keys");
            assertThat(check.fix()).contains("pg_read_all_stats");
            holder.rollback();
        }
    }

    /**
     * A transaction that wrote keys and then ran {@code PREPARE TRANSACTION} (two-phase commit, its
     * transaction manager gone) holds them with no session: every retry of those keys waits, then gets 409,
     * until someone commits or rolls it back. in-flight fails, naming its gid, owner and age and the
     * remedy; also after a restart, when PostgreSQL has recovered it. Before, the check looked only at
     * sessions' locks and passed. On a private server with {@code max_prepared_transactions} set.
     */
    @Test
    void aPreparedTransactionHoldingKeysFails() throws Exception {
        try (PrivatePostgres pg = PrivatePostgres.start(Map.of("max_prepared_transactions", "10"))) {
            TestDatabase twoPhase = TestDatabase.create(pg.server());
            try {
                PGSimpleDataSource dataSource = new PGSimpleDataSource();
                dataSource.setURL(twoPhase.jdbcUrl());
                dataSource.setUser(twoPhase.user());
                Doctor.Builder doctor = Doctor.builder().dataSource(dataSource).lockTimeout(Duration.ofSeconds(1));
                try (Connection c = twoPhase.connect();
                        Statement st = c.createStatement()) {
                    st.execute("begin; insert into outbox.idempotency_key (scope, idem_key, fingerprint, expires_at)"
                            + " values ('s', 'prepared', 'f', clock_timestamp() + interval '1 hour');"
                            + " prepare transaction 'doctor-2pc'");
                }
                // a retry of the key waits for the prepared transaction
                try (Connection retry = twoPhase.connect();
                        Statement st = retry.createStatement()) {
                    st.execute("set lock_timeout = '200ms'");
                    assertThatThrownBy(() -> st.execute(
                                    "insert into outbox.idempotency_key (scope, idem_key, fingerprint, expires_at)"
                                            + " values ('s', 'prepared', 'f', clock_timestamp() + interval '1 hour')"
                                            + " on conflict do nothing"))
                            .isInstanceOf(SQLException.class)
                            .hasMessageContaining("lock timeout");
                }
                for (boolean restarted : List.of(false, true)) {
                    if (restarted) {
                        pg.restart();
                    }
                    await().atMost(30, TimeUnit.SECONDS).untilAsserted(() -> {
                        Doctor.Check check = doctor.build().run().check("in-flight");
                        assertThat(check.verdict()).as("%s", check).isEqualTo(Verdict.FAIL);
                        assertThat(check.summary())
                                .contains("1 prepared transaction(s) holding keys longer than the lock timeout")
                                .doesNotContain("committed key(s) without a response");
                        assertThat(check.evidence())
                                .anySatisfy(e -> assertThat(e)
                                        .startsWith("prepared transaction 'doctor-2pc' of postgres, prepared ")
                                        .contains(" ago, holding keys (RowExclusiveLock, no session)")
                                        .endsWith(": COMMIT PREPARED 'doctor-2pc' or ROLLBACK PREPARED 'doctor-2pc'"
                                                + " once its transaction manager is known dead"));
                        assertThat(check.fix()).contains("COMMIT PREPARED", "ROLLBACK PREPARED");
                    });
                }
                try (Connection c = twoPhase.connect();
                        Statement st = c.createStatement()) {
                    st.execute("rollback prepared 'doctor-2pc'");
                }
                Doctor.Check released = doctor.build().run().check("in-flight");
                assertThat(released.verdict()).as("%s", released).isEqualTo(Verdict.PASS);
            } finally {
                // a prepared transaction left in the database would keep it from being dropped
                try (Connection c = twoPhase.connect();
                        Statement st = c.createStatement();
                        ResultSet rs = st.executeQuery("select gid from pg_prepared_xacts")) {
                    List<String> left = new ArrayList<>();
                    while (rs.next()) {
                        left.add(rs.getString(1));
                    }
                    for (String gid : left) {
                        st.execute("rollback prepared '" + gid + "'");
                    }
                }
                twoPhase.close();
            }
        }
    }

    @Test
    void aRetentionShorterThanTheTopicsFails_topicsFoundThroughTheConsumerGroup() throws Exception {
        String longTopic = TestKafka.uniqueTopic("doctor-long");
        try (Admin admin = kafka.admin()) {
            admin.createTopics(List.of(new NewTopic(longTopic, 1, (short) 1)
                            .configs(Map.of(
                                    "retention.ms",
                                    String.valueOf(Duration.ofDays(14).toMillis())))))
                    .all()
                    .get(30, TimeUnit.SECONDS);
            // the consumer group of the same name as the consumer has committed offsets on both topics
            admin.alterConsumerGroupOffsets(
                            consumer,
                            Map.of(
                                    new TopicPartition(longTopic, 0), new OffsetAndMetadata(0),
                                    new TopicPartition(topic, 0), new OffsetAndMetadata(0)))
                    .all()
                    .get(30, TimeUnit.SECONDS);
        }

        Doctor.Check check = Doctor.builder()
                .dataSource(db.dataSource())
                .kafkaProperties(Map.of("bootstrap.servers", kafka.bootstrapServers()))
                .build()
                .run()
                .check("topic-retention");

        assertThat(check.verdict()).isEqualTo(Verdict.FAIL);
        assertThat(check.summary()).contains(consumer + " on " + longTopic).doesNotContain(consumer + " on " + topic);
        assertThat(check.evidence())
                .contains("consumer " + consumer + ": topics " + new TreeSet<>(List.of(longTopic, topic))
                        + " from the offsets of consumer group " + consumer);
        assertThat(check.evidence())
                .anySatisfy(e ->
                        assertThat(e).contains(longTopic + " (retention.ms 14d").endsWith(": SHORTER"));
    }

    /**
     * G4: Kafka deletes whole segments, so on the broker's defaults (retention.ms and segment.ms 7 days) a
     * record can be read for up to 14 days, while the consumer's ids are purged after 7: a consumer that rewinds
     * handles records of the second week again. WARN, naming segment.ms; a consumer retention that covers both
     * passes.
     */
    @Test
    void aSegmentThatOutlivesTheProcessedIdsWarns() throws Exception {
        String defaults = TestKafka.uniqueTopic("doctor-defaults");
        kafka.createTopic(defaults, 1);

        Doctor.Check check = doctor().consumer(consumer, defaults).build().run().check("topic-retention");

        assertThat(check.verdict()).as("%s", check).isEqualTo(Verdict.WARN);
        assertThat(check.summary()).contains("segment.ms").contains(consumer + " on " + defaults);
        assertThat(check.evidence())
                .anySatisfy(e -> assertThat(e)
                        .contains(defaults + " (retention.ms 7d, segment.ms 7d")
                        .endsWith(": WITHIN A SEGMENT (records readable for up to 14d)"));
        assertThat(check.fix()).contains("retention.ms + segment.ms");

        assertThat(doctor().consumer(consumer, defaults)
                        .consumerRetention(consumer, Duration.ofDays(14))
                        .build()
                        .run()
                        .check("topic-retention")
                        .verdict())
                .isEqualTo(Verdict.PASS);
    }

    /**
     * G4: a compacted topic without deletion keeps the latest record of each key indefinitely, whatever its
     * retention.ms says, so a consumer that rewinds past its processed ids' retention handles purged ids
     * again: FAIL, naming the topic and the fix. The same topic with {@code compact,delete} and a
     * retention.ms within the consumer's retention passes on retention.ms.
     */
    @Test
    void aCompactedTopicFailsTheRetentionCheck() throws Exception {
        String compacted = TestKafka.uniqueTopic("doctor-compacted");
        String both = TestKafka.uniqueTopic("doctor-compact-delete");
        try (Admin admin = kafka.admin()) {
            admin.createTopics(List.of(
                            new NewTopic(compacted, 1, (short) 1)
                                    .configs(Map.of(
                                            "cleanup.policy",
                                            "compact",
                                            "retention.ms",
                                            String.valueOf(Duration.ofDays(1).toMillis()))),
                            new NewTopic(both, 1, (short) 1)
                                    .configs(Map.of(
                                            "cleanup.policy",
                                            "compact,delete",
                                            "retention.ms",
                                            String.valueOf(Duration.ofDays(1).toMillis()),
                                            "segment.ms",
                                            String.valueOf(Duration.ofDays(1).toMillis())))))
                    .all()
                    .get(30, TimeUnit.SECONDS);
        }

        Doctor.Check check =
                doctor().consumer(consumer, compacted, both).build().run().check("topic-retention");

        assertThat(check.verdict()).isEqualTo(Verdict.FAIL);
        assertThat(check.summary())
                .contains("compacted")
                .contains(consumer + " on " + compacted)
                .doesNotContain(consumer + " on " + both);
        assertThat(check.evidence())
                .anySatisfy(e -> assertThat(e)
                        .contains(compacted + " (cleanup.policy compact")
                        .endsWith(": COMPACTED"))
                .anySatisfy(e -> assertThat(e)
                        .contains(both + " (retention.ms 1d, segment.ms 1d, cleanup.policy compact,delete)")
                        .doesNotContain("SHORTER"));
        assertThat(check.fix()).contains("cleanup.policy=delete");

        assertThat(doctor().consumer(consumer, both)
                        .build()
                        .run()
                        .check("topic-retention")
                        .verdict())
                .isEqualTo(Verdict.PASS);
    }

    /**
     * A schema the later migrations did not reach (the relay and the producers still work on it) is named
     * with what each missing piece costs: V8's index dropped, then left INVALID as a failed {@code create
     * index concurrently} leaves it (V8's {@code if not exists} would keep it), and V7's function dropped.
     */
    @Test
    void missingOrInvalidMigrationObjectsWarn() throws Exception {
        assertThat(doctor().build().run().check("outbox-schema").verdict()).isEqualTo(Verdict.PASS);

        sql("drop index outbox.outbox_message_parked_key_idx");
        sql("drop function outbox.outbox_wait_for_change(text, integer, integer)");
        Doctor.Check missing = doctor().build().run().check("outbox-schema");
        assertThat(missing.verdict()).isEqualTo(Verdict.WARN);
        assertThat(missing.summary()).isEqualTo("missing: V7, V8");
        assertThat(missing.evidence())
                .contains("V5 constraint outbox_message_shard_range: present")
                .anySatisfy(e -> assertThat(e).startsWith("V8 index outbox_message_parked_key_idx: MISSING;"))
                .anySatisfy(e -> assertThat(e).startsWith("V7 function outbox_wait_for_change: MISSING;"));

        // an index PostgreSQL marks invalid, as a failed concurrent build leaves it
        sql("create index outbox_message_parked_key_idx on outbox.outbox_message (shard, message_key, id)"
                + " where parked_at is not null");
        sql(
                "update pg_index set indisvalid = false where indexrelid = 'outbox.outbox_message_parked_key_idx'::regclass");
        Doctor.Check invalid = doctor().build().run().check("outbox-schema");
        assertThat(invalid.summary()).contains("V8 (index invalid: drop it and build it again)");
        assertThat(invalid.fix()).contains("drop index concurrently outbox.outbox_message_parked_key_idx");
    }

    /**
     * G2 on the database side: a role whose commits are asynchronous lets the relay publish a transaction a
     * crash can still lose; the doctor names the role. Also when written {@code false}, which PostgreSQL
     * accepts for off and keeps as written in the role's settings: before, only {@code off} was recognised.
     */
    @ParameterizedTest
    @ValueSource(strings = {"off", "false"})
    void asynchronousCommitsOfARoleWarn(String off) throws Exception {
        String role = TestKafka.uniqueTopic("async_writer").replace('-', '_');
        sql("create role " + role);
        try {
            sql("alter role " + role + " set synchronous_commit = " + off);

            Doctor.Check check = doctor().build().run().check("database-durability");

            assertThat(check.verdict()).isEqualTo(Verdict.WARN);
            assertThat(check.summary()).contains("synchronous_commit=" + off + " for role " + role);
            assertThat(check.evidence())
                    .contains("synchronous_commit = " + off + " for role " + role + " in every database");
            assertThat(check.fix()).contains("synchronous_commit");
        } finally {
            sql("drop role " + role);
        }
    }

    /**
     * G2 on the database side with synchronous replication configured: {@code synchronous_commit = local}
     * (for the server, as here, or a producer's role) does not wait for the synchronous standby, so a
     * failover to it can lose a transaction the relay already published; the doctor warns. Without
     * {@code synchronous_standby_names}, local is as durable as on and passes. Private servers: with
     * standby names set and no standby, only local lets anything commit. Before, local passed both.
     */
    @Test
    void localCommitsWithSynchronousStandbyNamesWarn() throws Exception {
        // fsync on: a private server's default is off, which the check warns about too
        Map<String, String> local = Map.of("fsync", "on", "synchronous_commit", "local");
        Map<String, String> localWithStandby =
                Map.of("fsync", "on", "synchronous_commit", "local", "synchronous_standby_names", "s1");
        for (Map<String, String> settings : List.of(local, localWithStandby)) {
            try (PrivatePostgres pg = PrivatePostgres.start(settings)) {
                pg.createDatabase("sync");
                PGSimpleDataSource dataSource = new PGSimpleDataSource();
                dataSource.setURL(pg.server().jdbcUrl("sync"));
                dataSource.setUser(pg.server().user());
                Doctor.Check check = durability(dataSource);
                assertThat(check.evidence()).contains("synchronous_commit = local (this database, the doctor's role)");
                if (settings == local) {
                    assertThat(check.verdict())
                            .as("local without synchronous standbys")
                            .isEqualTo(Verdict.PASS);
                } else {
                    assertThat(check.verdict()).isEqualTo(Verdict.WARN);
                    assertThat(check.summary())
                            .startsWith("synchronous_commit=local with synchronous_standby_names set:");
                    assertThat(check.fix()).contains("not local");
                }
            }
        }
    }

    /**
     * A logical replication sender (a change-data-capture connector reading this server) is listed
     * with the standbys, always asynchronous, but is not a standby: a server with only such a sender
     * has no standby to fail over to, so no "only asynchronous standbys" warning, and the sender is
     * named in the evidence. Before, it warned as if a failover could lose commits. On a private
     * server with {@code wal_level=logical} and a {@code pgoutput} stream opened through pgjdbc.
     */
    @Test
    void aLogicalReplicationSenderIsNotAnAsynchronousStandby() throws Exception {
        try (PrivatePostgres pg = PrivatePostgres.start(Map.of("wal_level", "logical"))) {
            pg.createDatabase("cdc");
            String url = pg.server().jdbcUrl("cdc");
            try (Connection admin = pg.server().connect("cdc");
                    Statement st = admin.createStatement()) {
                st.execute("create table orders (id int primary key)");
                st.execute("create publication cdc_pub for table orders");
            }
            try (Connection cdc =
                    DriverManager.getConnection(url, replication(pg.server().user(), "database"))) {
                PGConnection pgc = cdc.unwrap(PGConnection.class);
                pgc.getReplicationAPI()
                        .createReplicationSlot()
                        .logical()
                        .withSlotName("doctor_cdc")
                        .withOutputPlugin("pgoutput")
                        .make();
                try (PGReplicationStream stream = pgc.getReplicationAPI()
                        .replicationStream()
                        .logical()
                        .withSlotName("doctor_cdc")
                        .withSlotOption("proto_version", 1)
                        .withSlotOption("publication_names", "cdc_pub")
                        .start()) {
                    PGSimpleDataSource dataSource = new PGSimpleDataSource();
                    dataSource.setURL(url);
                    dataSource.setUser(pg.server().user());
                    await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> {
                        Doctor.Check check = durability(dataSource);
                        assertThat(check.evidence())
                                .contains("1 logical replication sender(s) (change data capture, not standbys)")
                                .contains("no standby streams from this server");
                        assertThat(check.summary()).doesNotContain("asynchronous standbys");
                    });
                    assertThat(stream.isClosed()).isFalse();
                }
            }
        }
    }

    /**
     * G2: a doctor run as a role that cannot read the standbys' sync state (no pg_read_all_stats) does not
     * pass database-durability while a physical standby streams: it warns that it cannot tell whether the
     * standby is synchronous. Before, it passed with "durable settings". On a private server with a physical
     * replication stream opened through pgjdbc, standing in for an asynchronous standby.
     */
    @Test
    void aStandbyWhoseSyncStateIsNotReadableIsAWarning() throws Exception {
        // durable otherwise, so that the standby's sync state is all the check has to doubt
        try (PrivatePostgres pg = PrivatePostgres.start(DURABLE)) {
            pg.createDatabase("standby");
            String url = pg.server().jdbcUrl("standby");
            String blind = "doctor_blind_standby";
            try (Connection admin = pg.server().connect("standby");
                    Statement st = admin.createStatement()) {
                st.execute("create role " + blind + " login");
            }
            try (PhysicalStandby standby = PhysicalStandby.open(pg, "standby")) {
                PGSimpleDataSource asBlind = new PGSimpleDataSource();
                asBlind.setURL(url);
                asBlind.setUser(blind);
                await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> {
                    Doctor.Check check = durability(asBlind);
                    assertThat(check.evidence())
                            .anySatisfy(e -> assertThat(e).contains("their sync state is not readable"));
                    assertThat(check.verdict()).isEqualTo(Verdict.WARN);
                    assertThat(check.fix()).contains("pg_read_all_stats");
                });
                assertThat(standby.stream().isClosed()).isFalse();
            }
        }
    }

    /**
     * G2: a base backup in progress ({@code pg_basebackup}, default {@code -X stream}) streams from the
     * server in two WAL senders, one in state {@code backup} and one streaming its WAL, and neither is a
     * standby: the server has no standby to fail over to, so no "only asynchronous standbys" warning, and
     * the backup is named in the evidence. A physical replication stream opened beside it (standing in
     * for an asynchronous standby) is still counted. Before, the backup's senders were counted as two
     * asynchronous standbys. On a private server, with a real {@code pg_basebackup} throttled to 32 kB/s
     * so that it is still running while the doctor looks; with the temporary slot it creates for its WAL
     * stream, and with {@code --no-slot}, without one.
     */
    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void aBaseBackupInProgressIsNotAStandby(boolean noSlot) throws Exception {
        try (PrivatePostgres pg = PrivatePostgres.start(DURABLE)) {
            pg.createDatabase("backup");
            String url = pg.server().jdbcUrl("backup");
            Path pgBasebackup = clientProgram(pg, "pg_basebackup");
            assumeTrue(pgBasebackup != null, "pg_basebackup not found next to the server or in /usr/lib/postgresql");
            Path target = Files.createTempDirectory("doctor-basebackup-");
            Path log = target.resolve("pg_basebackup.log");
            List<String> command = clientCommand(pgBasebackup, pg, target.resolve("data"));
            command.addAll(List.of("-X", "stream", "--checkpoint=fast", "--max-rate=32k", "--no-sync"));
            if (noSlot) {
                command.add("--no-slot");
            }
            Process backup = new ProcessBuilder(command)
                    .redirectErrorStream(true)
                    .redirectOutput(log.toFile())
                    .start();
            try {
                PGSimpleDataSource dataSource = new PGSimpleDataSource();
                dataSource.setURL(url);
                dataSource.setUser(pg.server().user());
                // the base backup's sender and the sender of its WAL stream
                await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> {
                    assertThat(backup.isAlive())
                            .as("pg_basebackup running: %s", Files.readString(log))
                            .isTrue();
                    assertThat(senderStates(dataSource)).containsExactly("backup", "streaming");
                    assertThat(temporarySlots(dataSource)).hasSize(noSlot ? 0 : 1);
                });
                Doctor.Check check = durability(dataSource);
                assertThat(check.verdict()).as("%s", check).isEqualTo(Verdict.PASS);
                assertThat(check.evidence())
                        .contains(
                                "1 base backup in progress (not a standby)",
                                "1 WAL stream of a base backup (pg_basebackup -X stream, not a standby)",
                                "no standby streams from this server");
                assertThat(check.summary()).doesNotContain("asynchronous standbys");

                // a physical replication stream beside the backup is a standby, and asynchronous
                try (PhysicalStandby standby = PhysicalStandby.open(pg, "backup")) {
                    await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> {
                        Doctor.Check withStandby = durability(dataSource);
                        assertThat(withStandby.verdict()).as("%s", withStandby).isEqualTo(Verdict.WARN);
                        assertThat(withStandby.summary()).contains("only asynchronous standbys");
                        assertThat(withStandby.evidence())
                                .contains("1 base backup in progress (not a standby)")
                                .anySatisfy(e -> assertThat(e).startsWith("1 standby(s), 0 synchronous"));
                    });
                    assertThat(standby.stream().isClosed()).isFalse();
                }
                assertThat(backup.isAlive())
                        .as("pg_basebackup still running: %s", Files.readString(log))
                        .isTrue();
            } finally {
                stop(backup, target);
            }
        }
    }

    /**
     * G2: a WAL receiver ({@code pg_receivewal}, which writes the server's WAL to files for archiving and
     * replays none) streams from the server like a standby, but cannot be failed over to: it is named in the
     * evidence and not counted, so a server with no other standby has none and passes. Run with {@code
     * --synchronous} and named in {@code synchronous_standby_names}, it is a synchronous WAL sender (commits
     * wait for its flush), yet a physical replication stream beside it (standing in for an asynchronous
     * standby) is still the only standby, and asynchronous. Before, the receiver was counted as a standby: an
     * asynchronous one warned, and a synchronous one passed a failover to the asynchronous standby. On a
     * private server, with a real {@code pg_receivewal}.
     */
    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void aWalReceiverIsNotAStandby(boolean synchronous) throws Exception {
        try (PrivatePostgres pg = PrivatePostgres.start(DURABLE)) {
            pg.createDatabase("receivewal");
            Path pgReceivewal = clientProgram(pg, "pg_receivewal");
            assumeTrue(pgReceivewal != null, "pg_receivewal not found next to the server or in /usr/lib/postgresql");
            if (synchronous) {
                try (Connection c = pg.server().connectAdmin();
                        Statement st = c.createStatement()) {
                    st.execute("alter system set synchronous_standby_names = 'pg_receivewal'");
                    st.execute("select pg_reload_conf()");
                }
            }
            Path target = Files.createTempDirectory("doctor-receivewal-");
            Path log = target.resolve("pg_receivewal.log");
            Files.createDirectory(target.resolve("wal"));
            List<String> command = clientCommand(pgReceivewal, pg, target.resolve("wal"));
            command.add("--no-loop");
            if (synchronous) {
                command.add("--synchronous");
            }
            Process receiver = new ProcessBuilder(command)
                    .redirectErrorStream(true)
                    .redirectOutput(log.toFile())
                    .start();
            try {
                PGSimpleDataSource dataSource = new PGSimpleDataSource();
                dataSource.setURL(pg.server().jdbcUrl("receivewal"));
                dataSource.setUser(pg.server().user());
                await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> {
                    assertThat(receiver.isAlive())
                            .as("pg_receivewal running: %s", Files.readString(log))
                            .isTrue();
                    assertThat(senderStates(dataSource)).containsExactly("streaming");
                    Doctor.Check check = durability(dataSource);
                    assertThat(check.verdict()).as("%s", check).isEqualTo(Verdict.PASS);
                    assertThat(check.evidence())
                            .contains(
                                    synchronous
                                            ? "1 WAL receiver (pg_receivewal, synchronous, not a standby)"
                                            : "1 WAL receiver (pg_receivewal, not a standby)",
                                    "no standby streams from this server");
                    assertThat(check.summary()).doesNotContain("asynchronous standbys");
                });

                try (PhysicalStandby standby = PhysicalStandby.open(pg, "receivewal")) {
                    await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> {
                        Doctor.Check withStandby = durability(dataSource);
                        assertThat(withStandby.verdict()).as("%s", withStandby).isEqualTo(Verdict.WARN);
                        assertThat(withStandby.summary()).contains("only asynchronous standbys");
                        assertThat(withStandby.evidence())
                                .anySatisfy(e -> assertThat(e).startsWith("1 WAL receiver (pg_receivewal, "))
                                .anySatisfy(e -> assertThat(e).startsWith("1 standby(s), 0 synchronous"));
                    });
                    assertThat(standby.stream().isClosed()).isFalse();
                }
                assertThat(receiver.isAlive())
                        .as("pg_receivewal still running: %s", Files.readString(log))
                        .isTrue();
            } finally {
                stop(receiver, target);
            }
        }
    }

    /**
     * A commit that waits forever for synchronous replication: a real {@code pg_receivewal --synchronous}
     * named in {@code synchronous_standby_names} reports written and flushed positions but never a replayed
     * one, so under {@code synchronous_commit = remote_apply} every commit hangs. commit-waits fails from the
     * configuration before anything commits, and, once an insert on another connection is waiting, names
     * that session (pid, role, application, statement) and how long it has waited. Emptying the names
     * releases the insert, and the check passes. Before, no check looked at commits waiting.
     */
    @Test
    void aCommitWaitingForASynchronousWalReceiverUnderRemoteApplyFails() throws Exception {
        try (PrivatePostgres pg = PrivatePostgres.start()) {
            pg.createDatabase("syncrep");
            try (Connection c = pg.server().connect("syncrep");
                    Statement st = c.createStatement()) {
                st.execute("create table orders (id int primary key)");
            }
            Path pgReceivewal = clientProgram(pg, "pg_receivewal");
            assumeTrue(pgReceivewal != null, "pg_receivewal not found next to the server or in /usr/lib/postgresql");
            Path target = Files.createTempDirectory("doctor-syncrep-");
            Path log = target.resolve("pg_receivewal.log");
            Files.createDirectory(target.resolve("wal"));
            List<String> command = clientCommand(pgReceivewal, pg, target.resolve("wal"));
            command.addAll(List.of("--no-loop", "--synchronous"));
            Process receiver = new ProcessBuilder(command)
                    .redirectErrorStream(true)
                    .redirectOutput(log.toFile())
                    .start();
            ExecutorService producer = Executors.newSingleThreadExecutor();
            try {
                synchronousReplication(pg, "pg_receivewal", "remote_apply");
                PGSimpleDataSource dataSource = new PGSimpleDataSource();
                dataSource.setURL(pg.server().jdbcUrl("syncrep"));
                dataSource.setUser(pg.server().user());
                String hang = "commits hang: synchronous_commit = remote_apply (this database, the doctor's role):"
                        + " the synchronous sender(s) pg_receivewal report no replayed position";
                // nothing waits yet: the configuration alone fails
                await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> {
                    assertThat(receiver.isAlive())
                            .as("pg_receivewal running: %s", Files.readString(log))
                            .isTrue();
                    Doctor.Check check = commitWaits(dataSource);
                    assertThat(check.verdict()).as("%s", check).isEqualTo(Verdict.FAIL);
                    assertThat(check.summary())
                            .startsWith("commits wait forever: synchronous_commit = remote_apply")
                            .doesNotContain("session(s) waiting");
                    assertThat(check.evidence())
                            .contains("synchronous_standby_names = 'pg_receivewal' (FIRST 1: a commit waits for that"
                                    + " many of the named senders)")
                            .anySatisfy(e -> assertThat(e)
                                    .startsWith("sender pg_receivewal (pid ")
                                    .contains("streaming, sync; reports written, flushed; no replayed position"))
                            .anySatisfy(e -> assertThat(e).startsWith(hang));
                });

                // an insert that commits under remote_apply, on its own connection: it waits for a replay that never
                // comes
                Connection writer = pg.server().connect("syncrep");
                int pid;
                try (Statement st = writer.createStatement()) {
                    st.execute("set application_name = 'doctor-producer'");
                    st.execute("set synchronous_commit = remote_apply");
                    try (ResultSet rs = st.executeQuery("select pg_backend_pid()")) {
                        rs.next();
                        pid = rs.getInt(1);
                    }
                }
                Future<Integer> insert = producer.submit(() -> {
                    try (writer;
                            Statement st = writer.createStatement()) {
                        return st.executeUpdate("insert into orders values (1)");
                    }
                });
                await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> {
                    Doctor.Check check = commitWaits(dataSource);
                    assertThat(check.verdict()).as("%s", check).isEqualTo(Verdict.FAIL);
                    assertThat(check.summary())
                            .startsWith(
                                    "1 session(s) waiting 5s or longer for synchronous replication, the longest for")
                            .contains("(postgres (doctor-producer))")
                            .contains("commits wait forever: synchronous_commit = remote_apply");
                    assertThat(check.evidence())
                            .anySatisfy(e -> assertThat(e)
                                    .startsWith("1 session(s) waiting in their commit for synchronous replication,"
                                            + " the longest for ")
                                    .endsWith("(since its statement began): postgres (doctor-producer)"))
                            .anySatisfy(e -> assertThat(e)
                                    .startsWith("waiting for ")
                                    .endsWith(": pid " + pid + " postgres (doctor-producer): insert into orders values"
                                            + " (1)"));
                    assertThat(check.fix())
                            .contains("synchronous_standby_names = ''")
                            .contains("do not name it as a synchronous standby while commits use remote_apply");
                });
                assertThat(insert.isDone()).as("the insert still waits").isFalse();

                // emptying the names releases the waiting commit
                synchronousReplication(pg, "", "remote_apply");
                assertThat(insert.get(30, TimeUnit.SECONDS)).isEqualTo(1);
                await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> {
                    Doctor.Check released = commitWaits(dataSource);
                    assertThat(released.verdict()).as("%s", released).isEqualTo(Verdict.PASS);
                    assertThat(released.summary())
                            .isEqualTo("synchronous_standby_names is empty: no commit waits for a standby");
                });
            } finally {
                // never leave a commit waiting: the names emptied release it
                synchronousReplication(pg, "", "on");
                producer.shutdownNow();
                stop(receiver, target);
            }
        }
    }

    /**
     * {@code synchronous_standby_names} naming a standby that is not connected makes every commit made with
     * {@code synchronous_commit = on} wait forever: commit-waits fails from the configuration, with no session
     * waiting yet, for a role without pg_read_all_stats too (that no sender is connected is visible to any
     * role). A connected standby of another name (misnamed) is not synchronous: still a FAIL, and a WARN for
     * the role that cannot read its sync state. Before, no check looked at this.
     */
    @Test
    void synchronousStandbyNamesMatchingNoConnectedSenderFail() throws Exception {
        try (PrivatePostgres pg = PrivatePostgres.start()) {
            pg.createDatabase("syncnames");
            String blind = "doctor_blind_sync";
            try (Connection admin = pg.server().connect("syncnames");
                    Statement st = admin.createStatement()) {
                st.execute("create role " + blind + " login");
            }
            synchronousReplication(pg, "doctor_standby", "on");
            PGSimpleDataSource dataSource = new PGSimpleDataSource();
            dataSource.setURL(pg.server().jdbcUrl("syncnames"));
            dataSource.setUser(pg.server().user());
            PGSimpleDataSource asBlind = new PGSimpleDataSource();
            asBlind.setURL(pg.server().jdbcUrl("syncnames"));
            asBlind.setUser(blind);
            String noSender = "commits hang: synchronous_commit = on (this database, the doctor's role): no WAL sender"
                    + " is connected, and FIRST 1 must confirm";
            await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> {
                for (DataSource role : List.of(dataSource, asBlind)) {
                    Doctor.Check check = commitWaits(role);
                    assertThat(check.verdict()).as("%s", check).isEqualTo(Verdict.FAIL);
                    assertThat(check.summary()).startsWith("commits wait forever: synchronous_commit = on");
                    assertThat(check.evidence()).contains("no WAL sender is connected", noSender);
                    assertThat(check.fix()).contains("Bring the synchronous standby back", "'doctor_standby'");
                }
            });

            try (PhysicalStandby misnamed = PhysicalStandby.open(pg, "syncnames", "other_standby")) {
                await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> {
                    Doctor.Check check = commitWaits(dataSource);
                    assertThat(check.verdict()).as("%s", check).isEqualTo(Verdict.FAIL);
                    assertThat(check.evidence())
                            .anySatisfy(e -> assertThat(e)
                                    .startsWith("sender other_standby (pid ")
                                    .endsWith("streaming, async; reports written, flushed, replayed"))
                            .contains("commits hang: synchronous_commit = on (this database, the doctor's role): no"
                                    + " connected sender is synchronous (none matches the names, or none reports a"
                                    + " flushed position), and FIRST 1 must confirm");

                    Doctor.Check unreadable = commitWaits(asBlind);
                    assertThat(unreadable.verdict()).as("%s", unreadable).isEqualTo(Verdict.WARN);
                    assertThat(unreadable.summary()).contains("is not readable");
                    assertThat(unreadable.evidence())
                            .anySatisfy(e -> assertThat(e).endsWith("its state is not readable"));
                    assertThat(unreadable.fix()).contains("pg_read_all_stats");
                });
                assertThat(misnamed.stream().isClosed()).isFalse();
            } finally {
                synchronousReplication(pg, "", "on");
            }
        }
    }

    /**
     * A synchronous standby that reports flushed and replayed positions (a physical replication stream
     * standing in for one, named in {@code synchronous_standby_names}) confirms what {@code synchronous_commit
     * = remote_apply} waits for: commit-waits passes, with the sender in the evidence.
     */
    @Test
    void aSynchronousStandbyThatReplaysPassesUnderRemoteApply() throws Exception {
        try (PrivatePostgres pg = PrivatePostgres.start()) {
            pg.createDatabase("syncstandby");
            PGSimpleDataSource dataSource = new PGSimpleDataSource();
            dataSource.setURL(pg.server().jdbcUrl("syncstandby"));
            dataSource.setUser(pg.server().user());
            try (PhysicalStandby standby = PhysicalStandby.open(pg, "syncstandby", "doctor_standby")) {
                synchronousReplication(pg, "doctor_standby", "remote_apply");
                await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> {
                    Doctor.Check check = commitWaits(dataSource);
                    assertThat(check.verdict()).as("%s", check).isEqualTo(Verdict.PASS);
                    assertThat(check.summary())
                            .isEqualTo(
                                    "the synchronous senders confirm what every synchronous_commit in use waits for");
                    assertThat(check.evidence())
                            .contains("synchronous_commit = remote_apply (this database, the doctor's role): waits"
                                    + " until the standbys report it replayed")
                            .anySatisfy(e -> assertThat(e)
                                    .startsWith("sender doctor_standby (pid ")
                                    .endsWith("streaming, sync; reports written, flushed, replayed"));
                });
                assertThat(standby.stream().isClosed()).isFalse();
            } finally {
                synchronousReplication(pg, "", "on");
            }
        }
    }

    /**
     * Sets the server's {@code synchronous_standby_names} and {@code synchronous_commit} and reloads its
     * configuration; this session's own statements wait for no standby. The server must not have them on its
     * command line ({@link PrivatePostgres#start(Map)}, as {@link #DURABLE} does), which ALTER SYSTEM does not
     * override.
     */
    private static void synchronousReplication(PrivatePostgres pg, String names, String commit) throws SQLException {
        try (Connection c = pg.server().connectAdmin();
                Statement st = c.createStatement()) {
            st.execute("set synchronous_commit = local");
            st.execute("alter system set synchronous_standby_names = '" + names + "'");
            st.execute("alter system set synchronous_commit = '" + commit + "'");
            st.execute("select pg_reload_conf()");
        }
    }

    /** @return the commit-waits check of a doctor on {@code dataSource} alone */
    private static Doctor.Check commitWaits(DataSource dataSource) {
        return Doctor.builder().dataSource(dataSource).build().run().check("commit-waits");
    }

    /**
     * @param replication {@code true} for a physical replication connection, {@code database} for a logical one
     * @return the pgjdbc properties of a replication connection as {@code user}
     */
    private static Properties replication(String user, String replication) {
        Properties properties = new Properties();
        PGProperty.USER.set(properties, user);
        PGProperty.REPLICATION.set(properties, replication);
        PGProperty.ASSUME_MIN_SERVER_VERSION.set(properties, "10");
        PGProperty.PREFER_QUERY_MODE.set(properties, "simple");
        return properties;
    }

    /** @return the database-durability check of a doctor on {@code dataSource} alone */
    private static Doctor.Check durability(DataSource dataSource) {
        return Doctor.builder().dataSource(dataSource).build().run().check("database-durability");
    }

    /** @return the start of a command line that runs {@code program} against {@code pg}, writing into {@code dir} */
    private static List<String> clientCommand(Path program, PrivatePostgres pg, Path dir) {
        return new ArrayList<>(List.of(
                program.toString(),
                "-h",
                "127.0.0.1",
                "-p",
                String.valueOf(pg.port()),
                "-U",
                pg.server().user(),
                "-D",
                dir.toString()));
    }

    /** Stops a client program of the server's and deletes what it wrote under {@code target}. */
    private static void stop(Process program, Path target) throws Exception {
        program.destroy();
        if (!program.waitFor(30, TimeUnit.SECONDS)) {
            program.destroyForcibly();
            program.waitFor(30, TimeUnit.SECONDS);
        }
        try (Stream<Path> files = Files.walk(target)) {
            files.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        }
    }

    /**
     * A physical replication stream opened through pgjdbc from the server's current WAL position, standing in
     * for a standby (asynchronous unless synchronous_standby_names names it): the server lists its WAL sender until it is closed. It answers once as a
     * standby does, with the start position written, flushed and applied: a client that answers with no
     * applied position replays nothing (a WAL receiver such as pg_receivewal) and is not counted as a standby.
     */
    private record PhysicalStandby(Connection sender, PGReplicationStream stream) implements AutoCloseable {
        /** Opens one on {@code database} as the server's user. */
        static PhysicalStandby open(PrivatePostgres pg, String database) throws SQLException {
            return open(pg, database, null);
        }

        /**
         * Opens one on {@code database} as the server's user, under {@code applicationName} (the name {@code
         * synchronous_standby_names} matches), or pgjdbc's default when null.
         */
        static PhysicalStandby open(PrivatePostgres pg, String database, String applicationName) throws SQLException {
            LogSequenceNumber start;
            try (Connection c = pg.server().connect(database);
                    Statement st = c.createStatement();
                    ResultSet rs = st.executeQuery("select pg_current_wal_lsn()")) {
                rs.next();
                start = LogSequenceNumber.valueOf(rs.getString(1));
            }
            Properties properties = replication(pg.server().user(), "true");
            if (applicationName != null) {
                PGProperty.APPLICATION_NAME.set(properties, applicationName);
            }
            Connection sender = DriverManager.getConnection(pg.server().jdbcUrl(database), properties);
            try {
                PGReplicationStream stream = sender.unwrap(PGConnection.class)
                        .getReplicationAPI()
                        .replicationStream()
                        .physical()
                        .withStartPosition(start)
                        .start();
                stream.setFlushedLSN(start);
                stream.setAppliedLSN(start);
                stream.forceUpdateStatus();
                return new PhysicalStandby(sender, stream);
            } catch (SQLException | RuntimeException e) {
                sender.close();
                throw e;
            }
        }

        @Override
        public void close() throws SQLException {
            try {
                stream.close();
            } finally {
                sender.close();
            }
        }
    }

    /** @return the states of the server's WAL senders, sorted */
    private static List<String> senderStates(DataSource dataSource) throws SQLException {
        try (Connection c = dataSource.getConnection();
                Statement st = c.createStatement();
                ResultSet rs = st.executeQuery("select state from pg_stat_replication order by state")) {
            List<String> states = new ArrayList<>();
            while (rs.next()) {
                states.add(rs.getString(1));
            }
            return states;
        }
    }

    /** @return the names of the server's temporary replication slots */
    private static List<String> temporarySlots(DataSource dataSource) throws SQLException {
        try (Connection c = dataSource.getConnection();
                Statement st = c.createStatement();
                ResultSet rs = st.executeQuery("select slot_name from pg_replication_slots where temporary")) {
            List<String> slots = new ArrayList<>();
            while (rs.next()) {
                slots.add(rs.getString(1));
            }
            return slots;
        }
    }

    /**
     * @param program a client program of PostgreSQL, such as {@code pg_basebackup}
     * @return the program of the server's own binaries, else of the newest /usr/lib/postgresql; null if none
     */
    private static Path clientProgram(PrivatePostgres pg, String program) throws Exception {
        try (Connection c = pg.server().connectAdmin();
                Statement st = c.createStatement();
                ResultSet rs = st.executeQuery("select setting from pg_config where name = 'BINDIR'")) {
            if (rs.next()) {
                Path own = Path.of(rs.getString(1), program);
                if (Files.isExecutable(own)) {
                    return own;
                }
            }
        }
        Path root = Path.of("/usr/lib/postgresql");
        if (!Files.isDirectory(root)) {
            return null;
        }
        try (Stream<Path> versions = Files.list(root)) {
            return versions.filter(v -> v.getFileName().toString().matches("\\d+"))
                    .sorted(Comparator.comparingInt(
                                    (Path v) -> Integer.parseInt(v.getFileName().toString()))
                            .reversed())
                    .map(v -> v.resolve("bin").resolve(program))
                    .filter(Files::isExecutable)
                    .findFirst()
                    .orElse(null);
        }
    }

    /**
     * G1 on the Kafka side, on three real brokers: a replicated topic whose {@code min.insync.replicas} is 1,
     * or that allows unclean leader election, can lose a record after the relay saw it acknowledged and
     * deleted its row; the doctor fails it. Three replicas with two in sync pass; as many in sync as
     * replicas warn (writes stop with one broker down). The topics named for the relay and a consumer's
     * topics are both looked at.
     */
    @Test
    void replicationThatLosesAcknowledgedRecordsFails() throws Exception {
        try (TestKafka cluster = TestKafka.startCluster(3, Map.of())) {
            try (Admin admin = cluster.admin()) {
                admin.createTopics(List.of(
                                new NewTopic("durable", 1, (short) 3).configs(Map.of("min.insync.replicas", "2")),
                                new NewTopic("leader-alone", 1, (short) 3),
                                new NewTopic("unclean", 1, (short) 3)
                                        .configs(Map.of(
                                                "min.insync.replicas", "2",
                                                "unclean.leader.election.enable", "true")),
                                new NewTopic("all-in-sync", 1, (short) 3).configs(Map.of("min.insync.replicas", "3"))))
                        .all()
                        .get(30, TimeUnit.SECONDS);
            }
            Doctor.Builder doctor = Doctor.builder()
                    .dataSource(db.dataSource())
                    .kafkaProperties(Map.of("bootstrap.servers", cluster.bootstrapServers()));

            Doctor.Check passed = doctor.topics("durable").build().run().check("delivery-durability");
            assertThat(passed.verdict()).as("%s", passed).isEqualTo(Verdict.PASS);
            assertThat(passed.evidence())
                    .containsExactly("topic durable: replication factor 3, min.insync.replicas 2,"
                            + " unclean.leader.election.enable false");

            Doctor.Check warned = doctor.topics("all-in-sync").build().run().check("delivery-durability");
            assertThat(warned.verdict()).as("%s", warned).isEqualTo(Verdict.WARN);
            assertThat(warned.summary()).contains("all-in-sync");

            Doctor.Check failed = doctor.topics("leader-alone")
                    .consumer("payments", "unclean")
                    .build()
                    .run()
                    .check("delivery-durability");
            assertThat(failed.verdict()).as("%s", failed).isEqualTo(Verdict.FAIL);
            assertThat(failed.summary()).contains("leader-alone", "unclean").doesNotContain("durable,");
            assertThat(failed.evidence())
                    .anySatisfy(
                            e -> assertThat(e).startsWith("topic leader-alone:").contains("leader alone"))
                    .anySatisfy(e -> assertThat(e).startsWith("topic unclean:").contains("out-of-sync replica"));
            assertThat(failed.fix()).contains("min.insync.replicas=2");

            // a name that matches no topic: the fix says to create it or correct the name
            Doctor.Check absent = Doctor.builder()
                    .dataSource(db.dataSource())
                    .kafkaProperties(Map.of("bootstrap.servers", cluster.bootstrapServers()))
                    .topics("no-such-topic")
                    .build()
                    .run()
                    .check("delivery-durability");
            assertThat(absent.verdict()).as("%s", absent).isEqualTo(Verdict.WARN);
            assertThat(absent.evidence()).containsExactly("topic no-such-topic: does not exist");
            assertThat(absent.fix())
                    .startsWith("Create no-such-topic with replication factor 3")
                    .contains("or correct the name given")
                    .doesNotContain("kafka-configs --alter");
        }
    }

    /**
     * A topic named for a consumer that Kafka does not have (a typo in --consumer) is reported as such, with
     * the fix, and the consumer's other topics are still judged with their evidence. Before, Kafka's answer
     * for all topics at once failed on the one missing, and the whole check failed as "could not read the
     * topics' retention from Kafka", telling the operator to check the Kafka address.
     */
    @Test
    void aTopicThatDoesNotExistIsNamedAndTheOthersAreStillChecked() {
        String typo = TestKafka.uniqueTopic("doctor-typo");

        Doctor.Check check =
                doctor().consumer(consumer, topic, typo).build().run().check("topic-retention");

        assertThat(check.verdict()).as("%s", check).isEqualTo(Verdict.WARN);
        assertThat(check.summary()).contains("do not exist").contains(consumer + " on " + typo);
        assertThat(check.evidence())
                .contains("consumer " + consumer + " reads " + typo + ": topic " + typo + " does not exist")
                .anySatisfy(e -> assertThat(e)
                        .contains("consumer " + consumer + " (retention 7d) reads " + topic
                                + " (retention.ms 6d, segment.ms 1d"));
        assertThat(check.fix()).contains("Correct the topic name given with --consumer");
    }

    /**
     * V6's {@code vacuum_truncate = false} is found in any spelling PostgreSQL accepts for false and keeps as
     * written (a schema applied by another tool); before, only the literal {@code vacuum_truncate=false} was,
     * and the others were reported as V6 missing. {@code true} is still missing.
     */
    @ParameterizedTest
    @ValueSource(strings = {"off", "0", "no", "f", "FALSE"})
    void vacuumTruncateOffInAnySpellingIsV6(String off) throws Exception {
        sql("alter table outbox.outbox_message set (vacuum_truncate = '" + off + "')");

        Doctor.Check check =
                Doctor.builder().dataSource(db.dataSource()).build().run().check("outbox-schema");

        assertThat(check.verdict()).as("%s", check).isEqualTo(Verdict.PASS);
        assertThat(check.evidence()).contains("V6 vacuum_truncate = false on outbox_message: present");

        sql("alter table outbox.outbox_message set (vacuum_truncate = true)");
        Doctor.Check truncating =
                Doctor.builder().dataSource(db.dataSource()).build().run().check("outbox-schema");
        assertThat(truncating.verdict()).isEqualTo(Verdict.WARN);
        assertThat(truncating.summary()).isEqualTo("missing: V6");
    }

    @Test
    void unknownTopicsWarn_noKafkaSkips() {
        Doctor.Check unknown = Doctor.builder()
                .dataSource(db.dataSource())
                .kafkaProperties(Map.of("bootstrap.servers", kafka.bootstrapServers()))
                .consumerRetention("other", Duration.ofDays(1))
                .build()
                .run()
                .check("topic-retention");
        assertThat(unknown.verdict()).isEqualTo(Verdict.WARN);
        assertThat(unknown.fix()).contains("--consumer NAME=TOPIC");

        Doctor.Check skipped =
                Doctor.builder().dataSource(db.dataSource()).build().run().check("topic-retention");
        assertThat(skipped.verdict()).isEqualTo(Verdict.SKIP);
    }

    @Test
    void parkedAndLongUnpublishedRowsFail() throws Exception {
        sql("update outbox.outbox_message set created_at = clock_timestamp() - interval '10 minutes'");
        Doctor.Check late = doctor().build().run().check("outbox-unpublished");
        assertThat(late.verdict()).isEqualTo(Verdict.FAIL);
        assertThat(late.evidence()).anySatisfy(e -> assertThat(e).startsWith("1 unpublished message(s), oldest 10m"));

        sql(
                "update outbox.outbox_message set parked_at = clock_timestamp(), attempts = 3, last_error = 'RecordTooLargeException: big'");
        Doctor.Report report = doctor().build().run();
        assertThat(report.check("outbox-parked").verdict()).isEqualTo(Verdict.FAIL);
        assertThat(report.check("outbox-parked").evidence())
                .singleElement()
                .asString()
                .contains("topic " + topic + " key k1", "after 3 attempt(s): RecordTooLargeException: big");
        assertThat(report.check("outbox-unpublished").verdict()).isEqualTo(Verdict.PASS);
    }

    @Test
    void indexesLeftLargeByADrainedBacklogWarnUntilRebuilt() throws Exception {
        assertThat(doctor().build().run().check("outbox-index-size").verdict()).isEqualTo(Verdict.PASS);

        // a backlog of 250,000 rows, published (deleted) and vacuumed: the indexes keep its pages
        sql("insert into outbox.outbox_message (message_id, shard, topic, message_key, message_type, content_type)"
                + " select gen_random_uuid(), i % 64, 'backlog', 'k-' || i % 1000, 'T', 'text/plain'"
                + " from generate_series(1, 250000) i");
        sql("delete from outbox.outbox_message where topic = 'backlog'");
        sql("vacuum outbox.outbox_message");
        Doctor.Check large = doctor().build().run().check("outbox-index-size");
        assertThat(large.verdict()).as("%s", large).isEqualTo(Verdict.WARN);
        assertThat(large.evidence())
                .anySatisfy(e -> assertThat(e).startsWith("outbox.outbox_message_message_id_key: "))
                .anySatisfy(
                        e -> assertThat(e).startsWith("1 row(s) in outbox.outbox_message need about 8 index pages"));
        assertThat(large.fix()).contains("REINDEX TABLE CONCURRENTLY outbox.outbox_message");

        sql("reindex table concurrently outbox.outbox_message");
        Doctor.Check rebuilt = doctor().build().run().check("outbox-index-size");
        assertThat(rebuilt.verdict()).as("%s", rebuilt).isEqualTo(Verdict.PASS);
        assertThat(rebuilt.summary()).matches("the indexes hold [0-9] pages for 1 row\\(s\\)");
    }
}
