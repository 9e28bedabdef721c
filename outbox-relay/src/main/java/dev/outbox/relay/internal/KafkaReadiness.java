package dev.outbox.relay.internal;

import dev.outbox.core.internal.PrefixedLog;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.DescribeClusterOptions;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.config.ConfigResource;

/**
 * The readiness probe's view of Kafka while no record is acknowledged: a {@code describeCluster}
 * through an admin client made from the producer's connection properties, created at first use. The
 * same client reads the replicas and configuration of the topics the relay publishes to ({@link
 * TopicDurability}).
 */
final class KafkaReadiness implements TopicDurability.Topics {
    private final Map<String, Object> producerProperties;
    private final PrefixedLog log;
    private Admin admin;
    private boolean closed;

    KafkaReadiness(Map<String, Object> producerProperties, PrefixedLog log) {
        this.producerProperties = producerProperties;
        this.log = log;
    }

    /** @return whether the cluster answered within about 5 s (asked by the sampler and by topic lookups) */
    boolean answers() {
        try {
            admin().describeCluster(new DescribeClusterOptions().timeoutMs(5_000))
                    .nodes()
                    .get(6, TimeUnit.SECONDS);
            return true;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (ExecutionException | TimeoutException | KafkaException e) {
            log.debug("Kafka readiness probe failed: {}", e.toString());
        }
        return false;
    }

    /**
     * @param topic a topic name
     * @return its configuration as the broker reports it, or a failure (not waited for)
     */
    @Override
    public CompletionStage<Config> topicConfig(String topic) {
        ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        try {
            return admin().describeConfigs(List.of(resource))
                    .values()
                    .get(resource)
                    .toCompletionStage();
        } catch (KafkaException e) {
            return CompletableFuture.failedFuture(e);
        }
    }

    /**
     * @param topic a topic name
     * @return the fewest replicas of any of its partitions, as the cluster describes it now, or a failure
     *     ({@link org.apache.kafka.common.errors.UnknownTopicOrPartitionException} for a topic that does not
     *     exist; not waited for)
     */
    @Override
    public CompletionStage<Integer> fewestReplicas(String topic) {
        try {
            return admin().describeTopics(List.of(topic))
                    .topicNameValues()
                    .get(topic)
                    .toCompletionStage()
                    .thenApply(TopicReplication::fewestReplicas);
        } catch (KafkaException e) {
            return CompletableFuture.failedFuture(e);
        }
    }

    private synchronized Admin admin() {
        if (closed) {
            throw new KafkaException("the relay is closing");
        }
        if (admin == null) {
            Map<String, Object> props = new HashMap<>();
            for (var e : producerProperties.entrySet()) {
                if (AdminClientConfig.configNames().contains(e.getKey())) {
                    props.put(e.getKey(), e.getValue());
                }
            }
            props.put(
                    AdminClientConfig.CLIENT_ID_CONFIG,
                    props.getOrDefault(AdminClientConfig.CLIENT_ID_CONFIG, "outbox-relay") + "-probe");
            admin = Admin.create(props);
        }
        return admin;
    }

    synchronized void close(Duration timeout) {
        closed = true;
        if (admin != null) {
            admin.close(timeout);
        }
    }
}
