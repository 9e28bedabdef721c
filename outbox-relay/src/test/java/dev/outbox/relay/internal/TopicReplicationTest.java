package dev.outbox.relay.internal;

import static org.assertj.core.api.Assertions.assertThat;

import dev.outbox.relay.internal.TopicReplication.Risk;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * What a topic's replication settings mean (the relay's warning, the doctor's {@code delivery-durability}) (G1: a record the relay saw
 * acknowledged, whose row it then deleted, must survive the loss of a broker). The same settings on real
 * brokers: {@code DoctorIT.replicationThatLosesAcknowledgedRecordsFails}.
 */
class TopicReplicationTest {

    @ParameterizedTest(name = "replicas {0}, min.insync.replicas {1}, unclean {2}: {3}")
    @CsvSource({
        // the usual production setting, and more replicas than needed
        "3, 2, false, NONE",
        "5, 3, false, NONE",
        // replicated, but acks=all can be the leader alone
        "3, 1, false, LOSS",
        "2, 1, false, LOSS",
        // an out-of-sync replica may become leader and truncate acknowledged records
        "3, 2, true, LOSS",
        // one copy: a development cluster (unclean election means nothing with one replica)
        "1, 1, false, SINGLE_COPY",
        "1, 1, true, SINGLE_COPY",
        // safe for records, but one broker down stops every write
        "2, 2, false, WRITES_STOP",
        "3, 3, false, WRITES_STOP",
    })
    void riskOfAReplicationSetting(int replicas, int minInsync, boolean unclean, Risk expected) {
        TopicReplication.Finding f = TopicReplication.of(replicas, minInsync, unclean);

        assertThat(f.risk()).isEqualTo(expected);
        assertThat(f.reason().isEmpty()).as("a reason unless NONE").isEqualTo(expected == Risk.NONE);
    }
}
