package dev.outbox.relay.internal;

import dev.outbox.core.OutboxHeaders;
import dev.outbox.core.internal.Json;
import java.nio.charset.StandardCharsets;
import java.time.LocalDateTime;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.Locale;
import java.util.Map;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.internals.RecordHeaders;

/**
 * Turns an outbox row into the Kafka record the relay sends: key = {@code message_key} as UTF-8
 * (null stays null), value = {@code payload} (null = tombstone), the relay's headers ({@code
 * outbox-message-id}, {@code outbox-message-type}, {@code content-type}, {@code outbox-created-at},
 * {@code outbox-id}) and then the row's own {@code headers}, without the reserved names.
 */
final class RecordMapper {
    private static final DateTimeFormatter CREATED_AT =
            DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss.SSSSSS'Z'").withZone(ZoneOffset.UTC);

    private RecordMapper() {}

    /**
     * @param timestamp the record's timestamp: the wall-clock time at which the lease deadline was
     *     checked, so a broker can refuse a record that arrives too long after it
     *     ({@code message.timestamp.before.max.ms})
     */
    static ProducerRecord<byte[], byte[]> record(OutboxRow row, long timestamp) {
        RecordHeaders headers = new RecordHeaders();
        headers.add(OutboxHeaders.MESSAGE_ID, utf8(row.messageId().toString()));
        headers.add(OutboxHeaders.MESSAGE_TYPE, utf8(row.type()));
        headers.add(OutboxHeaders.CONTENT_TYPE, utf8(row.contentType()));
        headers.add(OutboxHeaders.CREATED_AT, createdAt(row.createdAt()));
        headers.add(OutboxHeaders.OUTBOX_ID, utf8(Long.toString(row.id())));
        String json = row.headersJson();
        if (json != null && !json.equals("{}")) {
            for (Map.Entry<String, String> h : Json.read(json).entrySet()) {
                // the relay's own headers are the lower-case names; a row appended before the names were
                // reserved in any case keeps its other spellings, as it always did
                if (!(OutboxHeaders.isReserved(h.getKey())
                        && h.getKey().equals(h.getKey().toLowerCase(Locale.ROOT)))) {
                    headers.add(h.getKey(), utf8(h.getValue()));
                }
            }
        }
        byte[] key = row.key() == null ? null : utf8(row.key());
        return new ProducerRecord<>(row.topic(), null, timestamp, key, row.takePayload(), headers);
    }

    /** @return {@code uuuu-MM-dd'T'HH:mm:ss.SSSSSS'Z'} in UTC as ASCII bytes, without a formatter per record */
    static byte[] createdAt(OffsetDateTime t) {
        LocalDateTime u = t.getOffset() == ZoneOffset.UTC
                ? t.toLocalDateTime()
                : t.withOffsetSameInstant(ZoneOffset.UTC).toLocalDateTime();
        int year = u.getYear();
        if (year < 0 || year > 9999) {
            return utf8(CREATED_AT.format(t));
        }
        byte[] b = new byte[27];
        digits(b, 0, year, 4);
        b[4] = '-';
        digits(b, 5, u.getMonthValue(), 2);
        b[7] = '-';
        digits(b, 8, u.getDayOfMonth(), 2);
        b[10] = 'T';
        digits(b, 11, u.getHour(), 2);
        b[13] = ':';
        digits(b, 14, u.getMinute(), 2);
        b[16] = ':';
        digits(b, 17, u.getSecond(), 2);
        b[19] = '.';
        digits(b, 20, u.getNano() / 1000, 6);
        b[26] = 'Z';
        return b;
    }

    private static void digits(byte[] b, int at, int value, int width) {
        for (int i = at + width - 1; i >= at; i--) {
            b[i] = (byte) ('0' + value % 10);
            value /= 10;
        }
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
