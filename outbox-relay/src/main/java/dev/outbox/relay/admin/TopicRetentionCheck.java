package dev.outbox.relay.admin;

import static dev.outbox.core.internal.Durations.format;

import dev.outbox.core.internal.TopicLifetime;
import dev.outbox.relay.admin.Doctor.Check;
import dev.outbox.relay.admin.Doctor.Verdict;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.config.TopicConfig;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;

/**
 * The {@code topic-retention} check: each consumer keeps its processed ids at least as long as the
 * topics it reads keep their records, as Kafka reports them. A consumer's topics are the ones it was
 * given, else those its consumer group of the same name has committed offsets for.
 *
 * <p>Kafka deletes whole segments, and a segment only once its newest record is older than {@code
 * retention.ms}; a segment takes records for up to {@code segment.ms}, so its first record can be
 * read for up to {@code retention.ms + segment.ms}. A consumer retention shorter than {@code
 * retention.ms} fails; one shorter than the sum warns.
 */
final class TopicRetentionCheck {
    /** What to do about a topic named for a consumer that Kafka does not have. */
    private static final String MISSING_FIX = "Correct the topic name given with --consumer NAME=TOPIC[,TOPIC...]"
            + " (Doctor.Builder.consumer); a topic found through the consumer group's offsets was deleted since:"
            + " name the consumer's topics with --consumer.";

    private final DoctorSettings settings;
    private final Map<String, List<String>> consumerTopics;
    private final Map<String, Object> kafkaProperties;
    private final Duration kafkaTimeout;

    TopicRetentionCheck(DoctorSettings settings) {
        this.settings = settings;
        this.consumerTopics = settings.consumerTopics();
        this.kafkaProperties = settings.kafkaProperties();
        this.kafkaTimeout = settings.kafkaTimeout();
    }

    /**
     * @param settings the doctor's settings, with Kafka given
     * @return the admin client's properties: the ones given, each request bounded by the Kafka timeout
     */
    static Map<String, Object> adminProperties(DoctorSettings settings) {
        Map<String, Object> props = new LinkedHashMap<>(settings.kafkaProperties());
        int ms = (int) Math.min(Integer.MAX_VALUE, settings.kafkaTimeout().toMillis());
        props.putIfAbsent(AdminClientConfig.CLIENT_ID_CONFIG, "outbox-doctor");
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, ms);
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, ms);
        return props;
    }

    /**
     * @return a {@link Verdict#FAIL} of check {@code id}: Kafka could not be asked about the topics' {@code
     *     what}, with the error {@code e} added to the evidence
     */
    static Check unreadable(
            String id,
            String title,
            String what,
            Map<String, Object> kafkaProperties,
            List<String> evidence,
            Exception e) {
        Throwable cause = e instanceof ExecutionException ? e.getCause() : e;
        evidence.add("Kafka at " + kafkaProperties.get(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG) + ": " + cause);
        return new Check(
                id,
                title,
                Verdict.FAIL,
                "could not read the topics' " + what + " from Kafka",
                evidence,
                "Check the Kafka address and the client security settings the doctor was given.");
    }

    /** @param kafka the run's admin client, asked only when Kafka was given and there are consumers */
    Check topicRetention(Set<String> consumersWithIds, KafkaSession kafka) {
        String title = "Each consumer keeps processed ids at least as long as its topics keep records";
        Set<String> consumers = new TreeSet<>(consumersWithIds);
        consumers.addAll(consumerTopics.keySet());
        if (consumers.isEmpty()) {
            return new Check(
                    "topic-retention",
                    title,
                    Verdict.PASS,
                    "no consumers (no processed ids, none given)",
                    List.of(),
                    null);
        }
        if (kafkaProperties == null) {
            return new Check(
                    "topic-retention",
                    title,
                    Verdict.SKIP,
                    "Kafka not given; consumers " + String.join(", ", consumers),
                    List.of(),
                    "Give Kafka's address (bootstrap-servers) so the doctor can read the topics' retention.");
        }
        List<String> evidence = new ArrayList<>();
        List<String> shorter = new ArrayList<>();
        List<String> compacted = new ArrayList<>();
        List<String> withinSegment = new ArrayList<>();
        List<String> unknown = new ArrayList<>();
        List<String> missing = new ArrayList<>();
        try {
            Admin admin = kafka.admin();
            Map<String, List<String>> topicsOf = new TreeMap<>();
            for (String consumer : consumers) {
                List<String> given = consumerTopics.get(consumer);
                if (given != null) {
                    topicsOf.put(consumer, given);
                    continue;
                }
                Set<String> topics = new TreeSet<>();
                Map<TopicPartition, ?> offsets = admin.listConsumerGroupOffsets(consumer)
                        .partitionsToOffsetAndMetadata()
                        .get(kafkaTimeout.toMillis(), TimeUnit.MILLISECONDS);
                offsets.keySet().forEach(tp -> topics.add(tp.topic()));
                if (topics.isEmpty()) {
                    unknown.add(consumer);
                    evidence.add("consumer " + consumer + ": topics unknown (not given, and no consumer group "
                            + consumer + " with offsets)");
                } else {
                    topicsOf.put(consumer, List.copyOf(topics));
                    evidence.add("consumer " + consumer + ": topics " + topics + " from the offsets of consumer group "
                            + consumer);
                }
            }
            Set<ConfigResource> resources = new LinkedHashSet<>();
            topicsOf.values()
                    .forEach(ts -> ts.forEach(t -> resources.add(new ConfigResource(ConfigResource.Type.TOPIC, t))));
            // each topic's answer on its own: a topic that does not exist leaves the others' findings
            Map<ConfigResource, Config> configs = new LinkedHashMap<>();
            Set<String> absent = new TreeSet<>();
            if (!resources.isEmpty()) {
                for (var f : admin.describeConfigs(resources).values().entrySet()) {
                    try {
                        configs.put(f.getKey(), f.getValue().get(kafkaTimeout.toMillis(), TimeUnit.MILLISECONDS));
                    } catch (ExecutionException ex) {
                        if (!(ex.getCause() instanceof UnknownTopicOrPartitionException)) {
                            throw ex;
                        }
                        absent.add(f.getKey().name());
                    }
                }
            }
            for (var e : topicsOf.entrySet()) {
                Duration retention = settings.retention(e.getKey());
                for (String topic : e.getValue()) {
                    if (absent.contains(topic)) {
                        evidence.add(
                                "consumer " + e.getKey() + " reads " + topic + ": topic " + topic + " does not exist");
                        missing.add(e.getKey() + " on " + topic);
                        continue;
                    }
                    Config config = configs.get(new ConfigResource(ConfigResource.Type.TOPIC, topic));
                    ConfigEntry entry = config == null ? null : config.get(TopicConfig.RETENTION_MS_CONFIG);
                    if (entry == null || entry.value() == null) {
                        evidence.add("topic " + topic + ": retention.ms not readable");
                        unknown.add(e.getKey() + "/" + topic);
                        continue;
                    }
                    long topicMs = Long.parseLong(entry.value());
                    ConfigEntry policy = config.get(TopicConfig.CLEANUP_POLICY_CONFIG);
                    if (TopicLifetime.compactOnly(policy == null ? null : policy.value())) {
                        // retention.ms does not apply: the latest record of each key stays until a newer one
                        evidence.add("consumer " + e.getKey() + " (retention " + format(retention) + ") reads " + topic
                                + " (cleanup.policy " + policy.value()
                                + ": the latest record of each key is kept indefinitely): COMPACTED");
                        compacted.add(e.getKey() + " on " + topic);
                        continue;
                    }
                    String shown = topicMs < 0 ? "unlimited" : format(Duration.ofMillis(topicMs));
                    boolean tooShort = topicMs < 0 || retention.toMillis() < topicMs;
                    ConfigEntry segment = config.get(TopicConfig.SEGMENT_MS_CONFIG);
                    long segmentMs = TopicLifetime.segmentMillis(segment == null ? null : segment.value());
                    long readableMs = tooShort ? Long.MAX_VALUE : TopicLifetime.readableMillis(topicMs, segmentMs);
                    boolean segmentOutlives = !tooShort && segmentMs > 0 && retention.toMillis() < readableMs;
                    evidence.add("consumer " + e.getKey() + " (retention " + format(retention) + ") reads " + topic
                            + " (retention.ms " + shown
                            + (segmentMs > 0 ? ", segment.ms " + format(Duration.ofMillis(segmentMs)) : "")
                            + (policy == null ? "" : ", cleanup.policy " + policy.value())
                            + ")"
                            + (tooShort ? ": SHORTER" : "")
                            + (segmentOutlives
                                    ? ": WITHIN A SEGMENT (records readable for up to "
                                            + format(Duration.ofMillis(readableMs)) + ")"
                                    : ""));
                    if (tooShort) {
                        shorter.add(e.getKey() + " on " + topic);
                    } else if (segmentOutlives) {
                        withinSegment.add(e.getKey() + " on " + topic);
                    }
                }
            }
        } catch (ExecutionException | TimeoutException | RuntimeException e) {
            return unreadable("topic-retention", title, "retention", kafkaProperties, evidence, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new Check("topic-retention", title, Verdict.FAIL, "interrupted while asking Kafka", evidence, null);
        }
        if (!shorter.isEmpty() || !compacted.isEmpty()) {
            List<String> what = new ArrayList<>();
            List<String> fix = new ArrayList<>();
            if (!shorter.isEmpty()) {
                what.add("processed ids are purged before the topic drops the records: " + String.join(", ", shorter));
                fix.add("Raise the consumer's retention (IdempotentConsumer.builder().retention(...)) to at least the"
                        + " topic's retention.ms, or lower the topic's retention; tell the doctor with"
                        + " --consumer-retention NAME=DURATION.");
            }
            if (!compacted.isEmpty()) {
                what.add("compacted topics keep records indefinitely, so processed ids are always purged first: "
                        + String.join(", ", compacted));
                fix.add(
                        "Give each compacted topic cleanup.policy=delete, or compact,delete with a retention.ms no longer"
                                + " than the consumer's retention; a topic that must stay compact-only cannot be read"
                                + " idempotently after its ids are purged.");
            }
            if (!missing.isEmpty()) {
                fix.add(MISSING_FIX);
            }
            return new Check(
                    "topic-retention",
                    title,
                    Verdict.FAIL,
                    String.join("; ", what)
                            + " (a consumer that rewinds, e.g. after an offset reset, handles those records again)"
                            + (missing.isEmpty() ? "" : "; " + missingSummary(missing)),
                    evidence,
                    String.join(" ", fix));
        }
        if (!unknown.isEmpty() || !withinSegment.isEmpty() || !missing.isEmpty()) {
            List<String> what = new ArrayList<>();
            List<String> fix = new ArrayList<>();
            if (!withinSegment.isEmpty()) {
                what.add(
                        "Kafka deletes whole segments, so a record can outlive retention.ms by up to segment.ms, longer"
                                + " than the processed ids: " + String.join(", ", withinSegment)
                                + " (a consumer that rewinds, e.g. after an offset reset, handles such records again)");
                fix.add("Keep retention.ms + segment.ms within the consumer's retention: lower the topic's segment.ms"
                        + " or retention.ms, or raise the consumer's retention (IdempotentConsumer.builder().retention(...),"
                        + " told to the doctor with --consumer-retention NAME=DURATION).");
            }
            if (!unknown.isEmpty()) {
                what.add("topics unknown for " + String.join(", ", unknown));
                fix.add("Tell the doctor which topics each consumer reads: --consumer NAME=TOPIC[,TOPIC...].");
            }
            if (!missing.isEmpty()) {
                what.add(missingSummary(missing));
                fix.add(MISSING_FIX);
            }
            return new Check(
                    "topic-retention", title, Verdict.WARN, String.join("; ", what), evidence, String.join(" ", fix));
        }
        return new Check(
                "topic-retention",
                title,
                Verdict.PASS,
                "every consumer's retention covers its topics' retention",
                evidence,
                null);
    }

    private static String missingSummary(List<String> missing) {
        return "topics that do not exist, so their retention is not checked: " + String.join(", ", missing);
    }
}
