package dev.outbox.relay.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import dev.outbox.core.internal.PrefixedLog;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestKafka;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.NewPartitionReassignment;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.slf4j.LoggerFactory;

/**
 * The relay's check of what G1 assumes of a topic, read again on three real brokers: a topic fixed
 * after the relay warned about it leaves {@code outbox.relay.unsafe.topics} at the next re-check (logged
 * at INFO), and one changed back for the worse enters it again (logged at WARN once more); a topic whose
 * replicas grew while one in sync is still enough enters it, and a topic deleted leaves it. Each state is
 * logged once however often it is read.
 */
@Tag("integration")
@ExtendWith(RealServices.class)
class TopicDurabilityRecheckIT {
    private static final String TOPIC = "rechecked";

    @Test
    void aTopicFixedLaterLeavesTheGaugeAndOneChangedBackEntersIt() throws Exception {
        Logger logger = (Logger) LoggerFactory.getLogger(TopicDurabilityRecheckIT.class);
        ListAppender<ILoggingEvent> events = new ListAppender<>();
        events.start();
        logger.addAppender(events);
        try (TestKafka cluster = TestKafka.startCluster(3, Map.of());
                Admin admin = cluster.admin()) {
            admin.createTopics(List.of(new NewTopic(TOPIC, 1, (short) 3))).all().get(30, TimeUnit.SECONDS);
            KafkaReadiness kafka = new KafkaReadiness(
                    Map.of("bootstrap.servers", cluster.bootstrapServers()), new PrefixedLog(logger, "relay[recheck]"));
            try {
                TopicDurability durability = new TopicDurability(kafka, new PrefixedLog(logger, "relay[recheck]"));
                Node[] nodes = {new Node(0, "b0", 1), new Node(1, "b1", 1), new Node(2, "b2", 1)};
                durability.met(TOPIC, List.of(new PartitionInfo(TOPIC, 0, nodes[0], nodes, nodes)));
                await().atMost(Duration.ofSeconds(30)).until(() -> durability.unsafeTopics() == 1);

                durability.recheck(); // unchanged: nothing new is logged
                minInsync(admin, "2");
                // (read again until a broker answers with the new value)
                recheckUntil(durability, 0, 30);
                await().atMost(Duration.ofSeconds(10))
                        .until(() -> messages(events, Level.INFO).stream().anyMatch(m -> m.contains("survives")));

                durability.recheck(); // fixed: nothing new is logged
                minInsync(admin, "1");
                recheckUntil(durability, 1, 30);
                Thread.sleep(500); // a re-check answered late would have logged by now
            } finally {
                kafka.close(Duration.ofSeconds(5));
            }
        } finally {
            logger.detachAppender(events);
        }
        assertThat(messages(events, Level.WARN))
                .as("one warning each time the topic became unsafe")
                .hasSize(2)
                .allMatch(m -> m.contains("topic rechecked: replication factor 3, min.insync.replicas 1"));
        assertThat(messages(events, Level.INFO).stream().filter(m -> m.contains("survives")))
                .singleElement()
                .asString()
                .contains("min.insync.replicas 2");
    }

    @Test
    void aTopicReassignedToThreeReplicasEntersTheGaugeAndLeavesItWhenDeleted() throws Exception {
        Logger logger = (Logger) LoggerFactory.getLogger(TopicDurabilityRecheckIT.class.getName() + ".grown");
        ListAppender<ILoggingEvent> events = new ListAppender<>();
        events.start();
        logger.addAppender(events);
        String grown = "grown";
        try (TestKafka cluster = TestKafka.startCluster(3, Map.of());
                Admin admin = cluster.admin()) {
            admin.createTopics(List.of(new NewTopic(grown, 1, (short) 1))).all().get(30, TimeUnit.SECONDS);
            KafkaReadiness kafka = new KafkaReadiness(
                    Map.of("bootstrap.servers", cluster.bootstrapServers()), new PrefixedLog(logger, "relay[grown]"));
            try {
                TopicDurability durability = new TopicDurability(kafka, new PrefixedLog(logger, "relay[grown]"));
                Node leader = new Node(0, "b0", 1);
                durability.met(grown, List.of(new PartitionInfo(grown, 0, leader, new Node[] {leader}, null)));
                await().atMost(Duration.ofSeconds(30))
                        .until(() -> messages(events, Level.INFO).stream().anyMatch(m -> m.contains("one copy")));
                assertThat(durability.unsafeTopics()).isZero();

                // three replicas now, min.insync.replicas still the default 1: an acknowledged record can be lost
                int first = admin.describeTopics(List.of(grown))
                        .allTopicNames()
                        .get(30, TimeUnit.SECONDS)
                        .get(grown)
                        .partitions()
                        .get(0)
                        .replicas()
                        .get(0)
                        .id();
                List<Integer> three = new ArrayList<>(List.of(first));
                for (int id = 0; three.size() < 3; id++) {
                    if (id != first) {
                        three.add(id);
                    }
                }
                admin.alterPartitionReassignments(
                                Map.of(new TopicPartition(grown, 0), Optional.of(new NewPartitionReassignment(three))))
                        .all()
                        .get(30, TimeUnit.SECONDS);
                recheckUntil(durability, 1, 60);

                admin.deleteTopics(List.of(grown)).all().get(30, TimeUnit.SECONDS);
                recheckUntil(durability, 0, 30);
                Thread.sleep(500); // a re-check answered late would have logged by now
            } finally {
                kafka.close(Duration.ofSeconds(5));
            }
        } finally {
            logger.detachAppender(events);
        }
        assertThat(messages(events, Level.WARN))
                .singleElement()
                .asString()
                .contains("topic grown: replication factor 3, min.insync.replicas 1");
        assertThat(messages(events, Level.INFO).stream().filter(m -> m.contains("no longer exists")))
                .hasSize(1);
        assertThat(messages(events, Level.INFO).stream().filter(m -> m.contains("could not read")))
                .as("a deleted topic is forgotten, not reported as unreadable")
                .isEmpty();
    }

    /** Reads the topics again every 300 ms until {@code unsafe} are counted: until a broker answers with the change. */
    private static void recheckUntil(TopicDurability durability, int unsafe, int seconds) {
        await().atMost(Duration.ofSeconds(seconds))
                .pollInterval(Duration.ofMillis(300))
                .until(() -> {
                    durability.recheck();
                    return durability.unsafeTopics() == unsafe;
                });
    }

    private static void minInsync(Admin admin, String value) throws Exception {
        ConfigResource topic = new ConfigResource(ConfigResource.Type.TOPIC, TOPIC);
        admin.incrementalAlterConfigs(Map.of(
                        topic,
                        List.of(new AlterConfigOp(
                                new ConfigEntry("min.insync.replicas", value), AlterConfigOp.OpType.SET))))
                .all()
                .get(30, TimeUnit.SECONDS);
    }

    private static List<String> messages(ListAppender<ILoggingEvent> events, Level level) {
        synchronized (events.list) {
            return events.list.stream()
                    .filter(e -> e.getLevel() == level)
                    .map(ILoggingEvent::getFormattedMessage)
                    .toList();
        }
    }
}
