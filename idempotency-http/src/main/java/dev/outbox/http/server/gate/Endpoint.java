package dev.outbox.http.server.gate;

import java.util.Locale;
import java.util.Objects;

/**
 * One route of the application as the start-up gate sees it.
 *
 * @param method the HTTP method in upper case, or {@code *} for a handler that takes every method
 *     (a servlet that overrides {@code service}, a Spring mapping without a method condition)
 * @param path the path as the application maps it: a servlet mapping ({@code /orders}, {@code
 *     /orders/*}, {@code *.do}, or {@code /*} for the default servlet) or a route template ({@code
 *     /orders/{id}})
 * @param handler what handles it, for the report (servlet name and class, or controller method)
 * @param exemption the reason from {@link dev.outbox.http.server.NotIdempotent} or a configured
 *     exemption, or {@code null} when the endpoint is not exempt
 */
public record Endpoint(String method, String path, String handler, String exemption) {

    /**
     * @throws NullPointerException when method, path or handler is null
     */
    public Endpoint {
        method = Objects.requireNonNull(method, "method may not be null").toUpperCase(Locale.ROOT);
        Objects.requireNonNull(path, "path may not be null");
        Objects.requireNonNull(handler, "handler may not be null");
    }

    /** @return {@code METHOD path}, the form the gate's report and configured exemptions use */
    public String route() {
        return method + " " + path;
    }

    Endpoint withMethod(String m) {
        return new Endpoint(m, path, handler, exemption);
    }

    Endpoint withExemption(String reason) {
        return new Endpoint(method, path, handler, reason);
    }
}
