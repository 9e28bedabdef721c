package dev.outbox.core.internal;

import dev.outbox.core.Outbox;
import dev.outbox.core.OutboxHeaders;
import dev.outbox.core.OutboxMessage;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.UUID;
import org.apache.avro.generic.GenericContainer;
import org.jooq.DSLContext;

/**
 * An {@link Outbox} that gives every appended message without a trace context of its own the
 * {@code traceparent} and {@code tracestate} of the current OpenTelemetry span, so that the relay
 * carries them to the Kafka record and the consumer's handler continues the producer's trace. Used
 * when the OpenTelemetry API is on the class path and no {@code traceparent} supplier was given.
 */
public final class TraceContextOutbox implements Outbox {
    private final Outbox delegate;

    public TraceContextOutbox(Outbox delegate) {
        this.delegate = Objects.requireNonNull(delegate, "delegate may not be null");
    }

    @Override
    public UUID append(DSLContext tx, OutboxMessage message) {
        return delegate.append(tx, traced(message));
    }

    @Override
    public UUID append(Connection tx, OutboxMessage message) throws SQLException {
        return delegate.append(tx, traced(message));
    }

    @Override
    public List<UUID> appendAll(DSLContext tx, List<OutboxMessage> messages) {
        return delegate.appendAll(tx, traced(messages));
    }

    @Override
    public List<UUID> appendAll(Connection tx, List<OutboxMessage> messages) throws SQLException {
        return delegate.appendAll(tx, traced(messages));
    }

    private static OutboxMessage traced(OutboxMessage message) {
        return withTraceContext(Objects.requireNonNull(message, "message may not be null"), current());
    }

    private static List<OutboxMessage> traced(List<OutboxMessage> messages) {
        Objects.requireNonNull(messages, "messages may not be null");
        Map<String, String> context = current();
        if (context.isEmpty()) {
            return messages;
        }
        List<OutboxMessage> traced = new ArrayList<>(messages.size());
        for (OutboxMessage m : messages) {
            traced.add(withTraceContext(Objects.requireNonNull(m, "messages may not contain null"), context));
        }
        return traced;
    }

    @Override
    public UUID append(DSLContext tx, String topic, String key, GenericContainer payload) {
        return append(tx, avroMessage(topic, key, payload));
    }

    @Override
    public OutboxMessage avroMessage(String topic, String key, GenericContainer payload) {
        return delegate.avroMessage(topic, key, payload);
    }

    @Override
    public String schema() {
        return delegate.schema();
    }

    @Override
    public int shardCount() {
        return delegate.shardCount();
    }

    @Override
    public String channel() {
        return delegate.channel();
    }

    private static Map<String, String> current() {
        return OpenTelemetryTraceContext.current();
    }

    /**
     * A message that names its own traceparent keeps it, tracestate included; one that does not takes
     * the context's ({@link InheritedTrace}: a tracestate of its own without a traceparent is dropped).
     */
    private static OutboxMessage withTraceContext(OutboxMessage message, Map<String, String> context) {
        if (context.isEmpty() || message.headers().containsKey(OutboxHeaders.TRACEPARENT)) {
            return message;
        }
        return new OutboxMessage(
                message.messageId(),
                message.topic(),
                message.key(),
                message.type(),
                message.contentType(),
                message.payload(),
                InheritedTrace.headers(message.headers(), context));
    }
}
