package dev.outbox.core;

import java.util.Locale;

/**
 * Names of the Kafka record headers the relay puts on every record. Values are UTF-8 strings.
 *
 * <p>Consumers identify a message by {@link #MESSAGE_ID}, never by topic, partition and offset:
 * the relay publishes at least once, so the same message id can appear at two offsets.
 */
public final class OutboxHeaders {
    /** The message id, a UUIDv7 in its canonical text form: the dedup identity downstream. */
    public static final String MESSAGE_ID = "outbox-message-id";

    /** The message type, for Avro payloads the schema's full name (e.g. {@code dev.outbox.schemas.orders.OrderPlaced}). */
    public static final String MESSAGE_TYPE = "outbox-message-type";

    /**
     * The payload's content type. Avro payloads name their writer schema here and in the payload
     * itself: {@code application/vnd.apache.avro+binary; schema=<full name>; fingerprint=<hex>}.
     */
    public static final String CONTENT_TYPE = "content-type";

    /**
     * The W3C trace context of the producing transaction: from the current OpenTelemetry span when
     * the OpenTelemetry API is on the producer's class path, else from the producer's supplier.
     */
    public static final String TRACEPARENT = "traceparent";

    /** The W3C {@code tracestate} (vendor trace data) that goes with {@link #TRACEPARENT}, when there is one. */
    public static final String TRACESTATE = "tracestate";

    /** When the outbox row was written, ISO-8601 UTC with microseconds (PostgreSQL's clock_timestamp()). */
    public static final String CREATED_AT = "outbox-created-at";

    /** The outbox row id (decimal): the commit-order position, useful when diagnosing duplicates. */
    public static final String OUTBOX_ID = "outbox-id";

    private OutboxHeaders() {}

    /**
     * @param name a header name
     * @return whether the relay sets this header itself, so producers may not supply it, in any
     *     case (a consumer that looks headers up without regard to case would find two)
     */
    public static boolean isReserved(String name) {
        return switch (name.toLowerCase(Locale.ROOT)) {
            case MESSAGE_ID, MESSAGE_TYPE, CONTENT_TYPE, CREATED_AT, OUTBOX_ID -> true;
            default -> false;
        };
    }
}
