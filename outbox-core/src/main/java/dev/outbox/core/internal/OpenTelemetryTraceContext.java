package dev.outbox.core.internal;

import io.opentelemetry.api.trace.propagation.W3CTraceContextPropagator;
import io.opentelemetry.context.Context;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The W3C trace context ({@code traceparent}, {@code tracestate}) of the current OpenTelemetry
 * context. Only loaded when {@link #available()} says the OpenTelemetry API is on the class path,
 * which it is an optional dependency for.
 */
public final class OpenTelemetryTraceContext {
    private static final String PROPAGATOR = "io.opentelemetry.api.trace.propagation.W3CTraceContextPropagator";

    private OpenTelemetryTraceContext() {}

    /**
     * @return whether the OpenTelemetry API is on the class path of this module
     */
    public static boolean available() {
        try {
            Class.forName(PROPAGATOR, false, OpenTelemetryTraceContext.class.getClassLoader());
            return true;
        } catch (ClassNotFoundException | LinkageError e) {
            return false;
        }
    }

    /**
     * @return {@code traceparent} and, when there is one, {@code tracestate} of the current span;
     *     empty when no valid span is current
     */
    static Map<String, String> current() {
        Map<String, String> carrier = new LinkedHashMap<>();
        W3CTraceContextPropagator.getInstance()
                .inject(Context.current(), carrier, (c, name, value) -> c.put(name, value));
        return carrier;
    }
}
