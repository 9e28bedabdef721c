package dev.outbox.relay.process;

import static dev.outbox.relay.process.PoisonThroughTheCliIT.cli;
import static org.assertj.core.api.Assertions.assertThat;

import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TcpProxy;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import java.sql.Connection;
import java.sql.Statement;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * {@code doctor} as operators and automation run it: text and {@code --json}, exit code 0 on a
 * healthy database and 4 once a failure mode is introduced (here a dropped primary key of the
 * processed-ids table, which would let G4's dedup insert let duplicates through), usage errors for
 * malformed options.
 */
@Tag("integration")
class DoctorThroughTheCliIT {

    @Test
    void passesOnAHealthyDatabase_failsWithExitCode4AndEvidenceOnceAConstraintIsDropped() throws Exception {
        TestKafka kafka = RealServices.kafka();
        String topic = TestKafka.uniqueTopic("cli-doctor");
        // records deleted within the consumer's 7 days, whole segments included: retention.ms 6d, segment.ms 1d
        kafka.createTopic(
                topic,
                1,
                Map.of(
                        "retention.ms", String.valueOf(Duration.ofDays(6).toMillis()),
                        "segment.ms", String.valueOf(Duration.ofDays(1).toMillis())));
        try (TestDatabase db = TestDatabase.create()) {
            String[] doctor = {
                "doctor",
                "--bootstrap-servers=" + kafka.bootstrapServers(),
                "--consumer",
                "payments=" + topic,
                "--consumer-retention=payments=7d",
                "--lock-timeout=2s"
            };

            var healthy = cli(db, doctor);
            assertThat(healthy.code()).as(healthy.out() + healthy.err()).isEqualTo(0);
            assertThat(healthy.out())
                    .contains(
                            "PASS  unique-constraints",
                            "PASS  topic-retention",
                            "PASS  outbox-parked",
                            "BUILD client-retry-budget",
                            "IdempotencyRules.retriesHaveABudget()",
                            // the test broker keeps one copy of each record
                            "WARN  delivery-durability",
                            "No check failed, ");

            try (Connection c = db.connect();
                    Statement st = c.createStatement()) {
                st.execute("alter table outbox.processed_message drop constraint processed_message_pkey");
            }
            var broken = cli(db, doctor);
            assertThat(broken.code()).isEqualTo(Main.EXIT_CHECK_FAILED).isEqualTo(4);
            assertThat(broken.out())
                    .contains(
                            "FAIL  unique-constraints",
                            "outbox.processed_message: no unique index",
                            "fix: Recreate it",
                            "1 check(s) failed, ");

            String[] json = new String[doctor.length + 1];
            System.arraycopy(doctor, 0, json, 0, doctor.length);
            json[doctor.length] = "--json";
            var asJson = cli(db, json);
            assertThat(asJson.code()).isEqualTo(4);
            assertThat(asJson.out().strip())
                    .startsWith("{\"schema\":\"outbox\"")
                    .contains(
                            "{\"id\":\"unique-constraints\",\"title\":",
                            "\"verdict\":\"FAIL\"",
                            "\"verdict\":\"BUILD_TIME\"");
        }
    }

    /**
     * {@code OUTBOX_RELAY_BOOTSTRAP_SERVERS=} left empty in a manifest, or {@code --bootstrap-servers=}:
     * the doctor runs its database checks and skips Kafka's, as with the setting absent. Before, it
     * exited 1 with no report.
     */
    @Test
    void anEmptyBootstrapServersSettingSkipsTheKafkaChecks() throws Exception {
        try (TestDatabase db = TestDatabase.create()) {
            var r = cli(db, "doctor", "--bootstrap-servers=");
            assertThat(r.code()).as(r.out() + r.err()).isEqualTo(0);
            assertThat(r.out())
                    .contains(
                            "PASS  unique-constraints",
                            "SKIP  delivery-durability",
                            "Kafka not given",
                            "No check failed.");
        }
    }

    /**
     * The doctor's Kafka requests take as long as the configured {@code kafka.request.timeout.ms} allows:
     * lowered to 2 s, an unreachable cluster fails the Kafka check after about 2 s. Before, the doctor
     * waited 15 s whatever the property said.
     */
    @Test
    void aLoweredRequestTimeoutEndsTheKafkaChecksSooner() throws Exception {
        String topic = TestKafka.uniqueTopic("cli-doctor-timeout");
        try (TestDatabase db = TestDatabase.create()) {
            int closed = InProcess.freePort();
            long start = System.nanoTime();
            var r = cli(
                    db,
                    "doctor",
                    "--bootstrap-servers=127.0.0.1:" + closed,
                    "--kafka.request.timeout.ms=2000",
                    "--topic=" + topic);
            long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
            assertThat(r.code()).as(r.out() + r.err()).isEqualTo(Main.EXIT_CHECK_FAILED);
            assertThat(r.out()).contains("FAIL  delivery-durability");
            assertThat(millis).as("the doctor's run").isLessThan(10_000);
        }
    }

    /**
     * Raised to 30 s, the doctor waits for a cluster that answers only after 17 s and checks its topics.
     * Before, it gave up after 15 s whatever the property said, and failed the check.
     */
    @Test
    void aRaisedRequestTimeoutWaitsForASlowCluster() throws Exception {
        TestKafka kafka = RealServices.kafka();
        String topic = TestKafka.uniqueTopic("cli-doctor-timeout");
        kafka.createTopic(topic, 1);
        String bootstrap = kafka.bootstrapServers().split(",")[0];
        int colon = bootstrap.lastIndexOf(':');
        try (TestDatabase db = TestDatabase.create();
                TcpProxy slow = TcpProxy.start(
                        bootstrap.substring(0, colon), Integer.parseInt(bootstrap.substring(colon + 1)))) {
            slow.pause();
            CompletableFuture<PoisonThroughTheCliIT.Cli> doctor = CompletableFuture.supplyAsync(() -> cli(
                    db,
                    "doctor",
                    "--bootstrap-servers=127.0.0.1:" + slow.port(),
                    "--kafka.request.timeout.ms=30000",
                    "--topic=" + topic));
            Thread.sleep(17_000);
            slow.resume();
            var r = doctor.get(60, TimeUnit.SECONDS);
            assertThat(r.code()).as(r.out() + r.err()).isEqualTo(0);
            // the test broker keeps one copy of each record
            assertThat(r.out()).contains("WARN  delivery-durability", topic);
        }
    }

    /**
     * A schema without the outbox tables (a wrong {@code --schema}, migrations not run) is a report with
     * each check that cannot read its table as a FAIL naming the table, the SQLState and the fix, and
     * exit code 4: not an exception and exit code 1. The same for a role that may not read the tables.
     */
    @Test
    void aSchemaWithoutTheTablesOrARoleWithoutSelectFailsWithAReportAndExitCode4() throws Exception {
        try (TestDatabase db = TestDatabase.create()) {
            try (Connection c = db.connect();
                    Statement st = c.createStatement()) {
                st.execute("create schema empty_schema");
            }
            var empty = cli(db, "doctor", "--schema=empty_schema");
            assertThat(empty.code()).as(empty.out() + empty.err()).isEqualTo(Main.EXIT_CHECK_FAILED);
            assertThat(empty.out())
                    .contains(
                            "Idempotency doctor, schema empty_schema",
                            "FAIL  key-expiry",
                            "cannot read empty_schema.idempotency_key (SQLState 42P01)",
                            "FAIL  outbox-parked",
                            "cannot read empty_schema.outbox_message (SQLState 42P01)",
                            "FAIL  outbox-unpublished",
                            "Check the schema name (--schema",
                            "check(s) failed, ");

            String role = "doctor_without_select_" + Long.toHexString(System.nanoTime());
            try (Connection c = db.connect();
                    Statement st = c.createStatement()) {
                st.execute("create role " + role + " login password 'pw'");
                st.execute("grant usage on schema outbox to " + role);
            }
            try {
                PoisonThroughTheCliIT.Cli doctor = PoisonThroughTheCliIT.run(
                        "doctor", "--jdbc-url=" + db.jdbcUrl(), "--db-user=" + role, "--db-password=pw");
                String printed = doctor.out();
                assertThat(doctor.code()).as(printed + doctor.err()).isEqualTo(Main.EXIT_CHECK_FAILED);
                assertThat(printed)
                        .contains(
                                "FAIL  key-expiry",
                                "cannot read outbox.idempotency_key (SQLState 42501)",
                                "FAIL  processed-expiry",
                                "GRANT SELECT ON outbox.outbox_message");
            } finally {
                try (Connection c = db.connect();
                        Statement st = c.createStatement()) {
                    st.execute("drop owned by " + role);
                    st.execute("drop role " + role);
                }
            }
        }
    }

    @Test
    void malformedOptionsAreUsageErrors_andDoctorOptionsBelongToDoctorOnly() {
        try (TestDatabase db = TestDatabase.create()) {
            var noTopic = cli(db, "doctor", "--consumer=payments");
            assertThat(noTopic.code()).isEqualTo(2);
            assertThat(noTopic.err()).singleElement().asString().contains("--consumer", "NAME=TOPIC[,TOPIC...]");

            var badDuration = cli(db, "doctor", "--key-ttl=soon");
            assertThat(badDuration.code()).isEqualTo(2);
            assertThat(badDuration.err())
                    .singleElement()
                    .asString()
                    .contains("Invalid value soon for option --key-ttl");

            var elsewhere = cli(db, "status", "--key-ttl=1h");
            assertThat(elsewhere.code()).isEqualTo(2);
        }
    }
}
