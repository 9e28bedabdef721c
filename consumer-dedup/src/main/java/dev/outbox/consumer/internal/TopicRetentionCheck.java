package dev.outbox.consumer.internal;

import dev.outbox.core.internal.Durations;
import dev.outbox.core.internal.PrefixedLog;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.config.TopicConfig;

/** Compares the topics' retention with the retention of processed ids, once at start. */
final class TopicRetentionCheck {
    private TopicRetentionCheck() {}

    /**
     * The retention guard: a topic that keeps records longer than this consumer keeps their ids can
     * replay (group reset, a new group) messages whose ids were purged, and they would be applied
     * again. Asks the brokers for each topic's {@code retention.ms} and {@code cleanup.policy} and warns
     * (a compacted topic keeps each key's last record for ever); a failure to ask is logged and
     * otherwise ignored.
     */
    static void run(Settings settings, String instance, PrefixedLog log) {
        Map<String, Object> props = new HashMap<>();
        settings.consumerProperties().forEach((k, v) -> {
            if (k.equals("bootstrap.servers")
                    || k.startsWith("security.")
                    || k.startsWith("ssl.")
                    || k.startsWith("sasl.")
                    || k.equals("client.dns.lookup")) {
                props.put(k, v);
            }
        });
        props.put("client.id", "outbox-consumer-retention-check-" + instance);
        List<ConfigResource> resources = settings.topics().stream()
                .map(t -> new ConfigResource(ConfigResource.Type.TOPIC, t))
                .toList();
        try (Admin admin = Admin.create(props)) {
            Map<ConfigResource, Config> configs = admin.describeConfigs(resources)
                    .all()
                    .get(settings.closeTimeout().toMillis(), TimeUnit.MILLISECONDS);
            long keptMillis = settings.retention().toMillis();
            configs.forEach((resource, config) -> {
                ConfigEntry policy = config.get(TopicConfig.CLEANUP_POLICY_CONFIG);
                if (policy != null
                        && policy.value() != null
                        && policy.value().contains(TopicConfig.CLEANUP_POLICY_COMPACT)) {
                    log.warn(
                            "topic {} is compacted (cleanup.policy={}): the last record of every key is kept for ever,"
                                    + " longer than this consumer keeps processed ids ({}), so a replay from older offsets"
                                    + " (an offset reset, a new group) would apply again each key's last message once its"
                                    + " id was purged. Consume a compacted topic only from committed offsets, or keep"
                                    + " its processed ids as long as it keeps records",
                            resource.name(),
                            policy.value(),
                            Durations.format(settings.retention()));
                    return;
                }
                ConfigEntry entry = config.get(TopicConfig.RETENTION_MS_CONFIG);
                if (entry == null || entry.value() == null) {
                    return;
                }
                long topicMillis = Long.parseLong(entry.value());
                if (topicMillis < 0 || topicMillis > keptMillis) {
                    log.warn(
                            "topic {} keeps records for {} (retention.ms={}), longer than this consumer keeps processed ids"
                                    + " ({}): a replay from older offsets (an offset reset, a new group) would apply again messages whose ids"
                                    + " were purged. Set retention(...) above the topic's retention.ms plus its segment.ms, or lower the"
                                    + " topic's retention.ms",
                            resource.name(),
                            topicMillis < 0 ? "ever" : Durations.format(Duration.ofMillis(topicMillis)),
                            topicMillis,
                            Durations.format(settings.retention()));
                }
            });
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (Exception e) {
            // the guard against replays of purged ids is off for this start: say so where it is seen
            log.warn(
                    "could not compare the topics' retention.ms with the retention of processed ids ({}); the"
                            + " retention guard did not run: {}",
                    Durations.format(settings.retention()),
                    e.toString());
        }
    }
}
