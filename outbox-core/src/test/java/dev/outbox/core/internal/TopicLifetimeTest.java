package dev.outbox.core.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class TopicLifetimeTest {

    @Test
    void onlyACompactPolicyWithoutDeleteKeepsRecordsForEver() {
        assertThat(TopicLifetime.compactOnly("compact")).isTrue();
        assertThat(TopicLifetime.compactOnly(" Compact ")).isTrue();
        assertThat(TopicLifetime.compactOnly("compact,delete")).isFalse();
        assertThat(TopicLifetime.compactOnly("delete, compact")).isFalse();
        assertThat(TopicLifetime.compactOnly("delete")).isFalse();
        assertThat(TopicLifetime.compactOnly(null)).isFalse();
    }

    @Test
    void aSegmentTimeNotReportedOrNotANumberCountsAsNone() {
        assertThat(TopicLifetime.segmentMillis("604800000")).isEqualTo(604_800_000L);
        assertThat(TopicLifetime.segmentMillis(null)).isZero();
        assertThat(TopicLifetime.segmentMillis("soon")).isZero();
        assertThat(TopicLifetime.segmentMillis("-1")).isZero();
    }

    /**
     * The doctor's retention check added the two unsaturated: a segment.ms near Long.MAX_VALUE made
     * the sum negative, shorter than any consumer's retention, and the topic passed.
     */
    @Test
    void aRecordIsReadableForRetentionAndSegmentTogetherSaturated() {
        assertThat(TopicLifetime.readableMillis(604_800_000L, 604_800_000L)).isEqualTo(1_209_600_000L);
        assertThat(TopicLifetime.readableMillis(604_800_000L, 0)).isEqualTo(604_800_000L);
        assertThat(TopicLifetime.readableMillis(604_800_000L, Long.MAX_VALUE)).isEqualTo(Long.MAX_VALUE);
        assertThat(TopicLifetime.readableMillis(Long.MAX_VALUE, Long.MAX_VALUE)).isEqualTo(Long.MAX_VALUE);
        assertThatThrownBy(() -> TopicLifetime.readableMillis(-1, 0)).isInstanceOf(IllegalArgumentException.class);
    }
}
