package dev.outbox.core.internal;

import dev.outbox.core.OutboxHeaders;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A message's headers with the producing request's trace context, where the message names none of
 * its own. W3C's {@code tracestate} belongs to the {@code traceparent} it came with: a message that
 * carries a {@code tracestate} without a {@code traceparent} loses it when it inherits a {@code
 * traceparent}, and takes the context's {@code tracestate}, if any, so that no record pairs one trace's
 * state with another trace.
 */
public final class InheritedTrace {
    private InheritedTrace() {}

    /**
     * @param headers the message's headers
     * @param context the trace context to inherit ({@code traceparent}, maybe {@code tracestate}), not empty
     * @return {@code headers} when they name a {@code traceparent}, else them without their {@code
     *     tracestate} and with the context's headers
     */
    public static Map<String, String> headers(Map<String, String> headers, Map<String, String> context) {
        if (headers.containsKey(OutboxHeaders.TRACEPARENT)) {
            return headers;
        }
        Map<String, String> inherited = new LinkedHashMap<>(headers);
        inherited.remove(OutboxHeaders.TRACESTATE);
        inherited.putAll(context);
        return inherited;
    }
}
