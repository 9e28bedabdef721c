package dev.outbox.consumer.internal;

import dev.outbox.consumer.Message;
import dev.outbox.consumer.MessageHandler;
import io.opentelemetry.api.GlobalOpenTelemetry;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.api.trace.propagation.W3CTraceContextPropagator;
import io.opentelemetry.context.Context;
import io.opentelemetry.context.Scope;
import io.opentelemetry.context.propagation.TextMapGetter;
import java.util.Map;
import org.jooq.DSLContext;

/**
 * Runs the handler inside a CONSUMER span whose parent is the producer's trace context (the {@code
 * traceparent} and {@code tracestate} headers the relay carried from the outbox row), current for
 * the handler's duration, so that its own spans and logs join the producer's trace. Spans go to
 * {@link GlobalOpenTelemetry}. Only loaded when the OpenTelemetry API is on the class path.
 */
public final class TraceContextHandler implements MessageHandler {
    private static final String INSTRUMENTATION = "dev.outbox.consumer";

    private static final TextMapGetter<Map<String, String>> HEADERS = new TextMapGetter<>() {
        @Override
        public Iterable<String> keys(Map<String, String> carrier) {
            return carrier.keySet();
        }

        @Override
        public String get(Map<String, String> carrier, String key) {
            return carrier == null ? null : carrier.get(key);
        }
    };

    private final MessageHandler delegate;
    private final String consumerName;

    private TraceContextHandler(MessageHandler delegate, String consumerName) {
        this.delegate = delegate;
        this.consumerName = consumerName;
    }

    /**
     * @param handler the application's handler
     * @param consumerName the consumer's name, a span attribute
     * @return the handler, run in a span; only called once {@link OptionalTracing} found the API
     */
    static MessageHandler wrap(MessageHandler handler, String consumerName) {
        return new TraceContextHandler(handler, consumerName);
    }

    @Override
    public void handle(Message message, DSLContext tx) throws Exception {
        Context producer = W3CTraceContextPropagator.getInstance().extract(Context.root(), message.headers(), HEADERS);
        Span span = GlobalOpenTelemetry.getTracer(INSTRUMENTATION)
                .spanBuilder(message.topic() + " process")
                .setParent(producer)
                .setSpanKind(SpanKind.CONSUMER)
                .setAttribute("messaging.system", "kafka")
                .setAttribute("messaging.operation.type", "process")
                .setAttribute("messaging.destination.name", message.topic())
                .setAttribute("messaging.destination.partition.id", Integer.toString(message.partition()))
                .setAttribute("messaging.kafka.offset", message.offset())
                .setAttribute("messaging.message.id", message.messageId().toString())
                .setAttribute("messaging.consumer.group.name", consumerName)
                .startSpan();
        try (Scope ignored = span.makeCurrent()) {
            delegate.handle(message, tx);
        } catch (Exception | Error e) {
            span.recordException(e);
            span.setStatus(StatusCode.ERROR, e.getClass().getName());
            throw e;
        } finally {
            span.end();
        }
    }
}
