package dev.outbox.relay.admin;

import static org.assertj.core.api.Assertions.assertThat;

import dev.outbox.relay.admin.Doctor.Verdict;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The {@code delivery-durability} verdict from a topic's replication settings (G1: a record the relay saw
 * acknowledged, whose row it then deleted, must survive the loss of a broker). The same settings on real
 * brokers: {@code DoctorIT.replicationThatLosesAcknowledgedRecordsFails}.
 */
class DurabilityChecksTest {

    @ParameterizedTest(name = "replicas {0}, min.insync.replicas {1}, unclean {2}: {3}")
    @CsvSource({
        // the usual production setting, and more replicas than needed
        "3, 2, false, PASS",
        "5, 3, false, PASS",
        // replicated, but acks=all can be the leader alone
        "3, 1, false, FAIL",
        "2, 1, false, FAIL",
        // an out-of-sync replica may become leader and truncate acknowledged records
        "3, 2, true, FAIL",
        // one copy: a development cluster (unclean election means nothing with one replica)
        "1, 1, false, WARN",
        "1, 1, true, WARN",
        // safe for records, but one broker down stops every write
        "2, 2, false, WARN",
        "3, 3, false, WARN",
    })
    void verdictOfAReplicationSetting(int replicas, int minInsync, boolean unclean, Verdict expected) {
        DurabilityChecks.Finding f = DurabilityChecks.replication(replicas, minInsync, unclean);

        assertThat(f.verdict()).isEqualTo(expected);
        assertThat(f.reason()).as("a reason when not PASS").isNotEqualTo(expected == Verdict.PASS ? "x" : "");
    }
}
