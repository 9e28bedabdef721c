package dev.outbox.relay.process;

import static dev.outbox.relay.process.PoisonThroughTheCliIT.cli;
import static org.assertj.core.api.Assertions.assertThat;

import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import java.sql.Connection;
import java.sql.Statement;
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
        kafka.createTopic(topic, 1);
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
