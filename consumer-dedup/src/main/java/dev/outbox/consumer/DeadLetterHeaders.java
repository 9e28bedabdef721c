package dev.outbox.consumer;

/**
 * Headers the idempotent consumer adds to a record it publishes to a dead-letter topic, next to
 * the original record's key, value and headers. Values are UTF-8 strings.
 *
 * <p>A dead-letter topic is at least once: a publish that was not acknowledged in time is retried
 * although the first copy may still land, and a record whose {@code DEAD_LETTERED} row was not
 * written yet when its partition moved (a crash or a rebalance right after the broker's ack) is
 * dead-lettered again by its next owner. {@link #ORIGINAL_TOPIC}, {@link #ORIGINAL_PARTITION}
 * and {@link #ORIGINAL_OFFSET} together are the same on every copy of one source record (also one
 * without a message id): deduplicate on them, or, for one entry per message, on the {@code
 * outbox-message-id} header copied from the source record when it has one.
 */
public final class DeadLetterHeaders {

    /**
     * Fully qualified class name of the handler's last exception; for a record without an id, of the
     * exception the configured message id extractor threw ({@link #REASON_INVALID_MESSAGE_ID}), absent
     * when it threw none.
     */
    public static final String EXCEPTION_CLASS = "dlt-exception-class";

    /**
     * Message of the handler's last exception (may be empty); for a record without an id, of the
     * exception the configured message id extractor threw, absent when it threw none.
     */
    public static final String EXCEPTION_MESSAGE = "dlt-exception-message";

    /** How many times the handler was called for the record (decimal; 0 for records without an id). */
    public static final String ATTEMPTS = "dlt-attempts";

    /** The topic the record was consumed from. */
    public static final String ORIGINAL_TOPIC = "dlt-original-topic";

    /** The partition the record was consumed from (decimal). */
    public static final String ORIGINAL_PARTITION = "dlt-original-partition";

    /** The offset the record was consumed at (decimal). */
    public static final String ORIGINAL_OFFSET = "dlt-original-offset";

    /** Why the record was dead-lettered: one of the {@code REASON_*} values. */
    public static final String REASON = "dlt-reason";

    /** {@link #REASON}: the handler failed on every attempt. */
    public static final String REASON_HANDLER_FAILED = "handler-failed";

    /** {@link #REASON}: neither the message id header nor the configured extractor gave an id. */
    public static final String REASON_MISSING_MESSAGE_ID = "missing-message-id";

    /**
     * {@link #REASON}: the message id header is not a UUID in canonical text form, or the configured
     * message id extractor threw ({@link #EXCEPTION_CLASS} and {@link #EXCEPTION_MESSAGE} say what).
     */
    public static final String REASON_INVALID_MESSAGE_ID = "invalid-message-id";

    /**
     * Present when the record was too large for the dead-letter topic and was published without its
     * value; the header holds the dropped value's length in bytes (decimal). Read the value from
     * {@link #ORIGINAL_TOPIC} at {@link #ORIGINAL_OFFSET} while that topic still keeps it.
     */
    public static final String VALUE_DROPPED = "dlt-value-dropped";

    /**
     * Set it to {@code true} on a copy of a dead-lettered record that an operator publishes back to
     * the source topic: the consumer then handles the message again, once, although its id is
     * recorded as {@code DEAD_LETTERED}. Only {@code DEAD_LETTERED} ids are re-admitted; a message id
     * that was handled stays a duplicate, so replaying a copy twice applies it once.
     */
    public static final String REPLAY = "dlt-replay";

    private DeadLetterHeaders() {}
}
