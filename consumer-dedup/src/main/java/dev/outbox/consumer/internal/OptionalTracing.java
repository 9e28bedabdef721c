package dev.outbox.consumer.internal;

import dev.outbox.consumer.MessageHandler;

/**
 * Decides whether handlers run in an OpenTelemetry span. Kept apart from {@link
 * TraceContextHandler}, whose fields and methods name OpenTelemetry types: this class names none,
 * so it loads, and answers, when the optional OpenTelemetry API is not on the class path.
 */
public final class OptionalTracing {
    private static final String OPEN_TELEMETRY = "io.opentelemetry.api.GlobalOpenTelemetry";
    private static final String PROPAGATOR = "io.opentelemetry.api.trace.propagation.W3CTraceContextPropagator";

    private OptionalTracing() {}

    /**
     * @param handler the application's handler
     * @param consumerName the consumer's name, a span attribute
     * @return the handler wrapped in a span when the OpenTelemetry API is on the class path, else
     *     {@code handler} itself
     */
    public static MessageHandler wrapIfAvailable(MessageHandler handler, String consumerName) {
        try {
            ClassLoader loader = OptionalTracing.class.getClassLoader();
            Class.forName(OPEN_TELEMETRY, false, loader);
            Class.forName(PROPAGATOR, false, loader);
        } catch (ClassNotFoundException | LinkageError e) {
            return handler;
        }
        return TraceContextHandler.wrap(handler, consumerName);
    }
}
