package dev.outbox.relay.internal;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import dev.outbox.core.internal.PrefixedLog;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.errors.TopicAuthorizationException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/**
 * The decisions of {@link TopicDurability} (the G1 warning about topics that can lose an acknowledged
 * record), with the admin client's answers given by hand and completed in the order a test chooses. The
 * same against three real brokers: {@code TopicDurabilityRecheckIT}.
 */
class TopicDurabilityTest {
    private static final String TOPIC = "orders";

    private final Logger logger = (Logger) LoggerFactory.getLogger(TopicDurabilityTest.class);
    private final ListAppender<ILoggingEvent> events = new ListAppender<>();
    private final Answers kafka = new Answers();
    private final TopicDurability durability = new TopicDurability(kafka, new PrefixedLog(logger, "relay[test]"));

    /** Hands out futures the test completes; each read asks for the replicas (recheck only) and the configuration. */
    private static final class Answers implements TopicDurability.Topics {
        final List<CompletableFuture<Config>> configs = new ArrayList<>();
        final List<CompletableFuture<Integer>> replicas = new ArrayList<>();

        @Override
        public synchronized CompletionStage<Config> topicConfig(String topic) {
            CompletableFuture<Config> f = new CompletableFuture<>();
            configs.add(f);
            return f;
        }

        @Override
        public synchronized CompletionStage<Integer> fewestReplicas(String topic) {
            CompletableFuture<Integer> f = new CompletableFuture<>();
            replicas.add(f);
            return f;
        }

        /** Answers the last recheck: the replicas now, and the configuration. */
        void recheckAnswers(int replicaCount, String minInsync) {
            replicas.get(replicas.size() - 1).complete(replicaCount);
            configs.get(configs.size() - 1).complete(config(minInsync));
        }
    }

    @BeforeEach
    void listen() {
        events.start();
        logger.addAppender(events);
    }

    @AfterEach
    void stopListening() {
        logger.detachAppender(events);
    }

    @Test
    void aConfigurationThatCannotBeReadIsLoggedOnceUntilAReadSucceeds() {
        durability.met(TOPIC, partitions(3));
        kafka.configs.get(0).completeExceptionally(new TopicAuthorizationException("no DescribeConfigs"));
        for (int i = 0; i < 3; i++) {
            durability.recheck();
            kafka.replicas.get(i).complete(3);
            kafka.configs.get(i + 1).completeExceptionally(new TopicAuthorizationException("no DescribeConfigs"));
        }
        assertThat(messages(Level.INFO)).singleElement().asString().contains("could not read its configuration");

        durability.recheck();
        kafka.recheckAnswers(3, "2");
        durability.recheck();
        kafka.replicas.get(4).complete(3);
        kafka.configs.get(5).completeExceptionally(new TopicAuthorizationException("no DescribeConfigs"));
        assertThat(messages(Level.INFO).stream().filter(m -> m.contains("could not read")))
                .as("a failure after a successful read is news again")
                .hasSize(2);
        assertThat(durability.unsafeTopics()).isZero();
    }

    @Test
    void aFailedReadBetweenTwoGoodOnesLogsTheTopicsStateOnlyOnce() {
        durability.met(TOPIC, partitions(1));
        kafka.configs.get(0).complete(config("1"));
        durability.recheck();
        kafka.replicas.get(0).completeExceptionally(new TimeoutException("slow"));
        kafka.configs.get(1).complete(config("1"));
        durability.recheck();
        kafka.recheckAnswers(1, "1");
        assertThat(messages(Level.INFO).stream().filter(m -> m.contains("replication factor 1")))
                .as("the single copy is logged when first read, not again after a failed read")
                .hasSize(1);
    }

    @Test
    void aTopicWhoseReplicasGrewWithOneInSyncBecomesUnsafe() {
        durability.met(TOPIC, partitions(1));
        kafka.configs.get(0).complete(config("1"));
        assertThat(durability.unsafeTopics()).isZero();

        // reassigned to three replicas, min.insync.replicas still 1: the recheck asks for the replicas too
        durability.recheck();
        kafka.recheckAnswers(3, "1");
        assertThat(durability.unsafeTopics()).isEqualTo(1);
        assertThat(messages(Level.WARN)).singleElement().asString().contains("replication factor 3");
    }

    @Test
    void metadataWithAnotherReplicaCountIsReadAgain() {
        durability.met(TOPIC, partitions(1));
        kafka.configs.get(0).complete(config("1"));
        durability.met(TOPIC, partitions(1));
        assertThat(kafka.configs).as("the same count again: not read again").hasSize(1);
        durability.met(TOPIC, partitions(3));
        kafka.configs.get(1).complete(config("1"));
        assertThat(durability.unsafeTopics()).isEqualTo(1);
    }

    @Test
    void aDeletedTopicLeavesTheGaugeAndIsReadAgainWhenMetAgain() {
        durability.met(TOPIC, partitions(3));
        kafka.configs.get(0).complete(config("1"));
        assertThat(durability.unsafeTopics()).isEqualTo(1);

        durability.recheck();
        kafka.replicas.get(0).completeExceptionally(new UnknownTopicOrPartitionException("gone"));
        kafka.configs.get(1).completeExceptionally(new UnknownTopicOrPartitionException("gone"));
        assertThat(durability.unsafeTopics()).isZero();
        assertThat(messages(Level.INFO)).singleElement().asString().contains("no longer exists");

        durability.recheck();
        assertThat(kafka.configs).as("forgotten: a recheck does not read it").hasSize(2);
        assertThat(messages(Level.INFO).stream().filter(m -> m.contains("could not read")))
                .isEmpty();

        durability.met(TOPIC, partitions(3)); // created again, still unsafe
        kafka.configs.get(2).complete(config("1"));
        assertThat(durability.unsafeTopics()).isEqualTo(1);
        assertThat(messages(Level.WARN)).hasSize(2);
    }

    @Test
    void anAnswerOlderThanOneAppliedIsIgnored() {
        durability.met(TOPIC, partitions(3));
        kafka.configs.get(0).complete(config("1"));
        assertThat(durability.unsafeTopics()).isEqualTo(1);

        durability.recheck(); // asked first, answered last, with the old value
        durability.recheck();
        kafka.replicas.get(1).complete(3);
        kafka.configs.get(2).complete(config("2"));
        assertThat(durability.unsafeTopics()).isZero();
        kafka.replicas.get(0).complete(3);
        kafka.configs.get(1).complete(config("1"));
        assertThat(durability.unsafeTopics())
                .as("the late, older answer is not applied")
                .isZero();
        assertThat(messages(Level.WARN)).hasSize(1);
    }

    private static List<PartitionInfo> partitions(int replicas) {
        Node[] nodes = new Node[replicas];
        for (int i = 0; i < replicas; i++) {
            nodes[i] = new Node(i, "b" + i, 9092);
        }
        return List.of(new PartitionInfo(TOPIC, 0, nodes[0], nodes, nodes));
    }

    private static Config config(String minInsync) {
        return new Config(List.of(
                new ConfigEntry("min.insync.replicas", minInsync),
                new ConfigEntry("unclean.leader.election.enable", "false")));
    }

    private List<String> messages(Level level) {
        synchronized (events.list) {
            return events.list.stream()
                    .filter(e -> e.getLevel() == level)
                    .map(ILoggingEvent::getFormattedMessage)
                    .toList();
        }
    }
}
