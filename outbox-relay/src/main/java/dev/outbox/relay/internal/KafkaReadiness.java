package dev.outbox.relay.internal;

import dev.outbox.core.internal.PrefixedLog;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterOptions;
import org.apache.kafka.common.KafkaException;

/**
 * The readiness probe's view of Kafka while no record is acknowledged: a {@code describeCluster}
 * through an admin client made from the producer's connection properties, created at first use.
 */
final class KafkaReadiness {
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
