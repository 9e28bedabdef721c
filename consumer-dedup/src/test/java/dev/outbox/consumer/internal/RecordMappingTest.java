package dev.outbox.consumer.internal;

import static org.assertj.core.api.Assertions.assertThat;

import dev.outbox.consumer.IdempotentConsumer;
import dev.outbox.core.OutboxHeaders;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.Test;

/**
 * A record's age against the retention of processed ids, read from the outbox's created-at header:
 * a header no clock can hold must not fail the record (it would be retried for ever, its handler's
 * outside effects repeated each time, G7).
 */
class RecordMappingTest {
    private final Fakes.Time time = new Fakes.Time();
    private final RecordMapping mapping = new RecordMapping(null, null, Duration.ofDays(7), time);

    private static ConsumerRecord<byte[], byte[]> createdAt(String value) {
        ConsumerRecord<byte[], byte[]> r = new ConsumerRecord<>("t", 0, 0, null, new byte[0]);
        r.headers().add(OutboxHeaders.CREATED_AT, value.getBytes(StandardCharsets.UTF_8));
        return r;
    }

    @Test
    void aCreatedAtPastEpochMillisecondsFallsBackToTheRecordsTimestamp() {
        assertThat(mapping.isStale(createdAt("+300000000-01-01T00:00:00Z"))).isFalse();
        assertThat(mapping.isStale(createdAt("not a date"))).isFalse();
    }

    /**
     * The longest retention the builder accepts fits the milliseconds ages are compared in: a
     * retention of {@code ChronoUnit.FOREVER} threw ArithmeticException here, in every transaction.
     */
    @Test
    void theLongestRetentionIsComparable() {
        RecordMapping forEver = new RecordMapping(null, null, IdempotentConsumer.Builder.MAX_RETENTION, time);
        assertThat(forEver.isStale(createdAt("1970-01-02T00:00:00Z"))).isFalse();
    }

    @Test
    void aCreatedAtOlderThanTheRetentionIsStale() {
        // the fake clock reads 2023-11-14T22:13:20Z; the retention is 7 days
        assertThat(mapping.isStale(createdAt("2023-11-01T00:00:00Z"))).isTrue();
        assertThat(mapping.isStale(createdAt("2023-11-14T00:00:00Z"))).isFalse();
    }
}
