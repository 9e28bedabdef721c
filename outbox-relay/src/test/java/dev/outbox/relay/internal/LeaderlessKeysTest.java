package dev.outbox.relay.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.apache.kafka.clients.producer.MockProducer;
import org.apache.kafka.clients.producer.internals.BuiltInPartitioner;
import org.apache.kafka.common.Cluster;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.errors.SaslAuthenticationException;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.Test;

/**
 * G7 does not misfire and G1 keeps flowing when a partition has no leader: the decision which keys are
 * held back (not sent, no attempt counted) from the producer's cached metadata.
 */
class LeaderlessKeysTest {
    private static final int PARTITIONS = 4;
    private static final Node BROKER = new Node(1, "localhost", 9092);

    @Test
    void aKeyWhosePartitionHasNoLeaderIsHeldAndOthersAreNot() {
        String down = keyOn(2);
        String up = keyOn(1);
        MockProducer<byte[], byte[]> producer = producer(2);
        LeaderlessKeys keys = new LeaderlessKeys();

        assertThat(keys.hold(producer, "t", down)).isTrue();
        assertThat(keys.hold(producer, "t", up)).isFalse();
        assertThat(keys.hold(producer, "t", null))
                .as("rows without a key are not ordered, never held")
                .isFalse();
        assertThat(keys.contains(down)).isTrue();
        assertThat(keys.contains(up)).isFalse();
        assertThat(keys.refresh(producer)).containsExactly(down);
    }

    @Test
    void aHeldKeyIsLetGoOnceItsPartitionHasALeaderAgain() {
        String down = keyOn(3);
        LeaderlessKeys keys = new LeaderlessKeys();
        keys.hold(producer(3), "t", down);

        assertThat(keys.refresh(producer(-1))).isEmpty();
        assertThat(keys.isEmpty()).isTrue();
    }

    @Test
    void unknownMetadataHoldsNothing() {
        MockProducer<byte[], byte[]> producer = producer(0);
        producer.partitionsForException = new TimeoutException("Topic t not present in metadata after 60000 ms.");
        LeaderlessKeys keys = new LeaderlessKeys();

        assertThat(keys.hold(producer, "t", keyOn(0)))
                .as("the send then reports the missing topic as before")
                .isFalse();
        assertThat(keys.hold(producer(0), "other-topic", keyOn(0))).isFalse();
    }

    /**
     * A producer that failed to sign in reports it once, to the first call that waits for metadata; its
     * sends then only time out. That report reaches the caller, which replaces the producer: swallowed
     * here, the producer stayed in use and nothing of its shard was published again (G1's liveness).
     */
    @Test
    void anUnusableProducersReportReachesTheCaller() {
        String key = keyOn(0);
        MockProducer<byte[], byte[]> producer = producer(0);
        producer.partitionsForException =
                new SaslAuthenticationException("Authentication failed during authentication");
        LeaderlessKeys keys = new LeaderlessKeys();

        assertThatThrownBy(() -> keys.hold(producer, "t", key)).isInstanceOf(SaslAuthenticationException.class);
        assertThat(keys.contains(key))
                .as("not held on a report of the producer")
                .isFalse();

        keys.hold(producer(0), "t", key);
        assertThatThrownBy(() -> keys.refresh(producer)).isInstanceOf(SaslAuthenticationException.class);
        assertThat(keys.keys())
                .as("still held: nothing shows its partition has a leader")
                .containsExactly(key);
    }

    /** @return a producer whose metadata has topic t with {@link #PARTITIONS} partitions, {@code leaderless} without a leader */
    private static MockProducer<byte[], byte[]> producer(int leaderless) {
        List<PartitionInfo> infos = new ArrayList<>();
        for (int p = 0; p < PARTITIONS; p++) {
            Node leader = p == leaderless ? null : BROKER;
            infos.add(new PartitionInfo(
                    "t", p, leader, new Node[] {BROKER}, leader == null ? new Node[0] : new Node[] {BROKER}));
        }
        Cluster cluster = new Cluster("c", List.of(BROKER), infos, Set.of(), Set.of());
        return new MockProducer<>(cluster, false, null, new ByteArraySerializer(), new ByteArraySerializer());
    }

    /** @return a key that Kafka's built-in partitioner puts on {@code partition} */
    private static String keyOn(int partition) {
        for (int i = 0; ; i++) {
            String k = "key-" + i;
            if (BuiltInPartitioner.partitionForKey(k.getBytes(StandardCharsets.UTF_8), PARTITIONS) == partition) {
                return k;
            }
        }
    }
}
