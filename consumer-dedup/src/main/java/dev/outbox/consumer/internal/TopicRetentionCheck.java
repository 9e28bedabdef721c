package dev.outbox.consumer.internal;

import dev.outbox.core.internal.Durations;
import dev.outbox.core.internal.PrefixedLog;
import dev.outbox.core.internal.TopicLifetime;
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

/**
 * Compares how long the topics keep their records with the retention of processed ids, once at
 * start.
 *
 * <p>Kafka deletes whole segments, and a segment only once its newest record is older than {@code
 * retention.ms}; a segment takes records for up to {@code segment.ms}, so its first record can be
 * read for up to {@code retention.ms + segment.ms}. That sum, not {@code retention.ms} alone, is
 * what the processed ids must outlast.
 */
final class TopicRetentionCheck {
    private TopicRetentionCheck() {}

    /**
     * The retention guard: a topic that keeps records longer than this consumer keeps their ids can
     * replay (group reset, a new group) messages whose ids were purged, and they would be applied
     * again. Asks the brokers for each topic's {@code retention.ms}, {@code segment.ms} and {@code
     * cleanup.policy} and warns about a topic whose {@code retention.ms + segment.ms} is longer than
     * {@code settings.retention()}, whose {@code retention.ms} is -1 (records kept for ever), or
     * that is compacted without {@code delete} (each key's last record kept for ever, whatever its
     * {@code retention.ms}); {@code compact,delete} also deletes by time, so it gets the time check.
     * A {@code segment.ms} the brokers do not report is counted as 0. Ends with one INFO line naming
     * the topics checked; a failure to ask is logged and otherwise ignored.
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
            int warned = 0;
            for (ConfigResource resource : resources) {
                Config config = configs.get(resource);
                if (config != null && check(resource.name(), config, settings.retention(), log)) {
                    warned++;
                }
            }
            log.info(
                    "retention guard checked topics {} against the retention of processed ids ({}): {} of them can"
                            + " keep records longer",
                    settings.topics(),
                    Durations.format(settings.retention()),
                    warned);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (Exception e) {
            // the guard against replays of purged ids is off for this start: say so where it is seen
            log.warn(
                    "could not compare the topics' retention.ms and segment.ms with the retention of processed ids"
                            + " ({}); the retention guard did not run: {}",
                    Durations.format(settings.retention()),
                    e.toString());
        }
    }

    /**
     * Warns when {@code topic} can keep a record longer than processed ids are kept.
     *
     * @param topic the topic's name
     * @param config its configuration, as the brokers report it
     * @param retention how long this consumer keeps processed ids
     * @param log where the warning goes
     * @return whether it warned
     */
    private static boolean check(String topic, Config config, Duration retention, PrefixedLog log) {
        ConfigEntry policy = config.get(TopicConfig.CLEANUP_POLICY_CONFIG);
        if (TopicLifetime.compactOnly(policy == null ? null : policy.value())) {
            log.warn(
                    "topic {} is compacted (cleanup.policy={}): the last record of every key is kept for ever,"
                            + " longer than this consumer keeps processed ids ({}), so a replay from older offsets"
                            + " (an offset reset, a new group) would apply again each key's last message once its"
                            + " id was purged. Consume a compacted topic only from committed offsets, or keep"
                            + " its processed ids as long as it keeps records",
                    topic,
                    policy.value(),
                    Durations.format(retention));
            return true;
        }
        ConfigEntry entry = config.get(TopicConfig.RETENTION_MS_CONFIG);
        if (entry == null || entry.value() == null) {
            return false;
        }
        long retentionMs = Long.parseLong(entry.value());
        ConfigEntry segment = config.get(TopicConfig.SEGMENT_MS_CONFIG);
        long segmentMs = TopicLifetime.segmentMillis(segment == null ? null : segment.value());
        long keptMs = retention.toMillis();
        if (retentionMs < 0) {
            log.warn(
                    "topic {} keeps records for ever (retention.ms={}, segment.ms={}), longer than this consumer keeps"
                            + " processed ids ({}): a replay from older offsets (an offset reset, a new group) would"
                            + " apply again messages whose ids were purged. Give the topic a retention.ms whose sum"
                            + " with its segment.ms is at most {}, or keep processed ids for ever"
                            + " (retention(MAX_RETENTION))",
                    topic,
                    retentionMs,
                    shown(segmentMs),
                    Durations.format(retention),
                    Durations.format(retention));
            return true;
        }
        long readableMs = TopicLifetime.readableMillis(retentionMs, segmentMs);
        if (readableMs <= keptMs) {
            return false;
        }
        log.warn(
                "topic {} keeps records for up to {} (retention.ms={} plus segment.ms={}: Kafka deletes a segment only"
                        + " once its newest record is older than retention.ms, and a segment takes records for up to"
                        + " segment.ms), longer than this consumer keeps processed ids ({}): a replay from older"
                        + " offsets (an offset reset, a new group) would apply again messages whose ids were purged."
                        + " Set retention(...) to at least {}, or lower the topic's retention.ms or segment.ms so that"
                        + " their sum is at most {}",
                topic,
                Durations.format(Duration.ofMillis(readableMs)),
                shown(retentionMs),
                shown(segmentMs),
                Durations.format(retention),
                Durations.format(Duration.ofMillis(readableMs)),
                Durations.format(retention));
        return true;
    }

    /** @return {@code ms} as set on the topic and as a duration, e.g. {@code 518400000 (6d)} */
    private static String shown(long ms) {
        return ms + " (" + Durations.format(Duration.ofMillis(ms)) + ")";
    }
}
