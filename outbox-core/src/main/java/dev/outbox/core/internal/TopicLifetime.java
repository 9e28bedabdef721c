package dev.outbox.core.internal;

import java.util.Locale;

/**
 * How long a Kafka topic keeps its records, from its settings as the brokers report them: shared by
 * the consumer's retention guard and the relay's doctor. Kafka deletes whole segments, and a segment
 * only once its newest record is older than {@code retention.ms}; a segment takes records for up to
 * {@code segment.ms}, so a record can be read for up to their sum. Not part of the public API.
 */
public final class TopicLifetime {
    private TopicLifetime() {}

    /**
     * @param cleanupPolicy the topic's {@code cleanup.policy}, or null when not reported
     * @return whether the topic is compacted and never deleted by time or size ({@code compact} without
     *     {@code delete}); {@code compact,delete} also deletes records, each key's last one too, older
     *     than {@code retention.ms}
     */
    public static boolean compactOnly(String cleanupPolicy) {
        if (cleanupPolicy == null) {
            return false;
        }
        boolean compact = false;
        boolean delete = false;
        for (String p : cleanupPolicy.split(",")) {
            String v = p.strip().toLowerCase(Locale.ROOT);
            compact |= v.equals("compact");
            delete |= v.equals("delete");
        }
        return compact && !delete;
    }

    /**
     * @param segmentMs the topic's {@code segment.ms}, or null when not reported
     * @return the longest a segment takes records, in milliseconds; 0 when not reported or not a
     *     non-negative number, so that only {@code retention.ms} counts then
     */
    public static long segmentMillis(String segmentMs) {
        if (segmentMs == null) {
            return 0;
        }
        try {
            return Math.max(0, Long.parseLong(segmentMs.strip()));
        } catch (NumberFormatException e) {
            return 0;
        }
    }

    /**
     * @param retentionMs the topic's {@code retention.ms}, not negative (a negative one keeps records for
     *     ever: the caller says so)
     * @param segmentMs {@link #segmentMillis}
     * @return the longest a record can be read: their sum, saturated at {@link Long#MAX_VALUE} (both can
     *     be set that high)
     */
    public static long readableMillis(long retentionMs, long segmentMs) {
        if (retentionMs < 0 || segmentMs < 0) {
            throw new IllegalArgumentException(
                    "retention.ms " + retentionMs + " and segment.ms " + segmentMs + " must not be negative here");
        }
        return retentionMs > Long.MAX_VALUE - segmentMs ? Long.MAX_VALUE : retentionMs + segmentMs;
    }
}
