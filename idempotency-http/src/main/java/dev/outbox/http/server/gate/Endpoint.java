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
 *     /orders/{id}}, {@code /orders/**} for every path below {@code /orders})
 * @param handler what handles it, for the report (servlet name and class, controller method, or
 *     functional route)
 * @param exemption the reason from {@link dev.outbox.http.server.NotIdempotent} or a configured
 *     exemption, or {@code null} when the endpoint is not exempt
 * @param unreadable why the route's method or path could not be read, or {@code null} when both
 *     were: a functional route whose predicate the gate cannot take apart. Its method is then
 *     {@code *} or its path ends in {@code /**}, standing for what was not read, and the gate never
 *     counts it covered; an exemption lets it pass
 */
public record Endpoint(String method, String path, String handler, String exemption, String unreadable) {

    /**
     * @throws NullPointerException when method, path or handler is null
     */
    public Endpoint {
        method = Objects.requireNonNull(method, "method may not be null").toUpperCase(Locale.ROOT);
        Objects.requireNonNull(path, "path may not be null");
        Objects.requireNonNull(handler, "handler may not be null");
    }

    /**
     * An endpoint whose method and path were read.
     *
     * @param method see {@link #method()}
     * @param path see {@link #path()}
     * @param handler see {@link #handler()}
     * @param exemption see {@link #exemption()}
     * @throws NullPointerException when method, path or handler is null
     */
    public Endpoint(String method, String path, String handler, String exemption) {
        this(method, path, handler, exemption, null);
    }

    /** @return {@code METHOD path}, the form the gate's report and configured exemptions use */
    public String route() {
        return method + " " + path;
    }

    Endpoint withMethod(String m) {
        return new Endpoint(m, path, handler, exemption, unreadable);
    }

    Endpoint withExemption(String reason) {
        return new Endpoint(method, path, handler, reason, unreadable);
    }
}
