package dev.outbox.consumer.internal;

import dev.outbox.consumer.DeadLetterHeaders;
import dev.outbox.consumer.Message;
import dev.outbox.core.OutboxHeaders;
import dev.outbox.core.internal.TimeSource;
import dev.outbox.schemas.AvroCodec;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.function.Function;
import java.util.regex.Pattern;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.header.Header;

/** What the consumer reads from a Kafka record: its message id, its {@link Message}, its replay flag and its age. */
final class RecordMapping {
    private static final Pattern CANONICAL_UUID =
            Pattern.compile("[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}");

    /**
     * A record's message id, or why it has none.
     *
     * @param reason a {@link DeadLetterHeaders} reason when there is no id, else null
     * @param failure what the configured extractor threw, or null
     */
    record MessageId(UUID id, String reason, Throwable failure) {
        MessageId(UUID id, String reason) {
            this(id, reason, null);
        }
    }

    private final Function<ConsumerRecord<byte[], byte[]>, Optional<UUID>> extractor;
    private final AvroCodec codec;
    private final Duration retention;
    private final TimeSource time;

    /**
     * @param extractor the configured message id extractor, or null for the {@code outbox-message-id} header
     * @param retention how long processed ids are kept, for {@link #isStale}
     */
    RecordMapping(
            Function<ConsumerRecord<byte[], byte[]>, Optional<UUID>> extractor,
            AvroCodec codec,
            Duration retention,
            TimeSource time) {
        this.extractor = extractor;
        this.codec = codec;
        this.retention = retention;
        this.time = time;
    }

    static RecordMapping of(Settings settings, TimeSource time) {
        return new RecordMapping(settings.messageIdExtractor(), settings.codec(), settings.retention(), time);
    }

    MessageId messageId(ConsumerRecord<byte[], byte[]> record) {
        if (extractor != null) {
            try {
                Optional<UUID> id = extractor.apply(record);
                return id != null && id.isPresent()
                        ? new MessageId(id.get(), null)
                        : new MessageId(null, DeadLetterHeaders.REASON_MISSING_MESSAGE_ID);
            } catch (RuntimeException e) {
                // kept for the dead-letter headers and the log: the reason alone does not say what is wrong
                return new MessageId(null, DeadLetterHeaders.REASON_INVALID_MESSAGE_ID, e);
            }
        }
        Header header = record.headers().lastHeader(OutboxHeaders.MESSAGE_ID);
        if (header == null || header.value() == null) {
            return new MessageId(null, DeadLetterHeaders.REASON_MISSING_MESSAGE_ID);
        }
        String text = new String(header.value(), StandardCharsets.UTF_8);
        if (!CANONICAL_UUID.matcher(text).matches()) {
            return new MessageId(null, DeadLetterHeaders.REASON_INVALID_MESSAGE_ID);
        }
        return new MessageId(UUID.fromString(text), null);
    }

    Message toMessage(ConsumerRecord<byte[], byte[]> record, UUID id) {
        Map<String, String> headers = new HashMap<>();
        for (Header h : record.headers()) {
            headers.put(h.key(), h.value() == null ? "" : new String(h.value(), StandardCharsets.UTF_8));
        }
        return new Message(
                id,
                record.topic(),
                record.partition(),
                record.offset(),
                record.timestamp(),
                record.key(),
                headers,
                record.value(),
                codec);
    }

    /** Whether the record asks to be handled again although its id was dead-lettered. */
    static boolean isReplay(ConsumerRecord<byte[], byte[]> record) {
        Header header = record.headers().lastHeader(DeadLetterHeaders.REPLAY);
        return header != null
                && header.value() != null
                && "true".equalsIgnoreCase(new String(header.value(), StandardCharsets.UTF_8).strip());
    }

    /**
     * Whether the record is older than the retention of processed ids, so that its id may have been
     * purged and a copy processed before would not be recognised. Its age is read from the outbox's
     * created-at header, else from the record's timestamp.
     */
    boolean isStale(ConsumerRecord<byte[], byte[]> record) {
        long born = record.timestamp();
        Header header = record.headers().lastHeader(OutboxHeaders.CREATED_AT);
        if (header != null && header.value() != null) {
            try {
                born = Instant.parse(new String(header.value(), StandardCharsets.UTF_8))
                        .toEpochMilli();
            } catch (DateTimeParseException | ArithmeticException e) {
                // the record's timestamp then (a date past what epoch milliseconds hold overflows)
            }
        }
        return born > 0 && time.currentTimeMillis() - born > retention.toMillis();
    }
}
