package dev.outbox.http.server.internal;

import dev.outbox.http.server.IdempotencyKey;
import dev.outbox.http.server.StoredResponse;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * The response side of {@code IdempotencyFilter}: what is kept of a handler's response for replay,
 * and how a first response, a replay, or a refusal of a key in use (422, 409) is sent once the
 * key's transaction has ended.
 */
public final class Responses {
    private static final Set<String> NEVER_STORED = Set.of(
            "set-cookie",
            "set-cookie2",
            "content-length",
            "transfer-encoding",
            "connection",
            "keep-alive",
            "date",
            "upgrade",
            "trailer",
            "proxy-authenticate",
            IdempotencyKey.REPLAYED_HEADER.toLowerCase(Locale.ROOT),
            StoredResponse.SEND_ERROR.toLowerCase(Locale.ROOT));

    private Responses() {}

    /**
     * @param name a response header's name, not null
     * @return {@code name}
     * @throws IllegalArgumentException when it is blank, or a cookie, framing or hop-by-hop header,
     *     which belongs to one response only and must never be replayed
     */
    public static String requireStorable(String name) {
        if (NEVER_STORED.contains(name.toLowerCase(Locale.ROOT)) || name.isBlank()) {
            throw new IllegalArgumentException(
                    "header '" + name + "' cannot be stored and replayed: cookies, framing and"
                            + " hop-by-hop headers belong to one response only, and the filter's own are set by it");
        }
        return name;
    }

    /**
     * @param capturing the handler's response, body held back
     * @param storedHeaders the names of the headers to keep; {@code Content-Type} is read from the
     *     response's content type
     * @return the status, the named headers the handler set, and the body
     */
    public static StoredResponse capture(CapturingResponse capturing, List<String> storedHeaders) {
        Map<String, List<String>> headers = new LinkedHashMap<>();
        boolean error = capturing.errorSent();
        for (String name : storedHeaders) {
            if (name.equalsIgnoreCase("Content-Type")) {
                if (error) {
                    continue; // the error page has its own; the reason's is stored below
                }
                String type = capturing.getContentType();
                if (type != null) {
                    headers.put("Content-Type", List.of(type));
                }
                continue;
            }
            Collection<String> values = capturing.getHeaders(name);
            if (values != null && !values.isEmpty()) {
                headers.put(name, new ArrayList<>(values));
            }
        }
        if (error) {
            // stored as an earlier version answered it (the reason as text/plain), so that its replay by a
            // filter of that version, sharing the store, is what it used to send
            String reason = capturing.errorMessage();
            if (reason != null) {
                headers.put("Content-Type", List.of("text/plain;charset=UTF-8"));
            }
            headers.put(StoredResponse.SEND_ERROR, List.of(reason == null ? "none" : "reason"));
            return new StoredResponse(
                    capturing.getStatus(),
                    headers,
                    reason == null ? new byte[0] : reason.getBytes(StandardCharsets.UTF_8));
        }
        return new StoredResponse(capturing.getStatus(), headers, capturing.body());
    }

    /**
     * Sends what the handler answered, once the transaction has ended: the body held back, or the
     * error it sent, for the container's error page to answer.
     */
    public static void send(HttpServletResponse response, CapturingResponse capturing) throws IOException {
        if (capturing.errorSent()) {
            sendError(response, capturing.getStatus(), capturing.errorMessage());
        } else {
            sendBody(response, capturing.body());
        }
    }

    private static void sendError(HttpServletResponse response, int status, String reason) throws IOException {
        if (reason == null) {
            response.sendError(status);
        } else {
            response.sendError(status, reason);
        }
    }

    /** Sends the body held back from the handler, with its length. */
    public static void sendBody(HttpServletResponse response, byte[] body) throws IOException {
        response.setContentLength(body.length);
        if (body.length > 0) {
            response.getOutputStream().write(body);
        }
    }

    /** Sends a stored response, marked {@code Idempotent-Replayed: true}. */
    public static void replay(HttpServletResponse response, StoredResponse stored) throws IOException {
        response.setStatus(stored.status());
        String error = stored.header(StoredResponse.SEND_ERROR);
        stored.headers().forEach((name, values) -> {
            if (name.equalsIgnoreCase(StoredResponse.SEND_ERROR)
                    || (error != null && name.equalsIgnoreCase("Content-Type"))) {
                return; // the error page has its own
            }
            if (name.equalsIgnoreCase("Content-Type")) {
                response.setContentType(values.get(0));
            } else {
                values.forEach(v -> response.addHeader(name, v));
            }
        });
        response.setHeader(IdempotencyKey.REPLAYED_HEADER, "true");
        if (error != null) {
            sendError(
                    response,
                    stored.status(),
                    error.equals("none") ? null : new String(stored.body(), StandardCharsets.UTF_8));
        } else {
            sendBody(response, stored.body());
        }
    }

    /** Drops what the handler set on a response that has not been sent yet. */
    public static void resetIfPossible(HttpServletResponse response) {
        if (!response.isCommitted()) {
            response.reset();
        }
    }

    /**
     * Answers 422: the key was used for another request.
     *
     * @param route the request's method and path
     */
    public static void mismatch(HttpServletResponse response, String key, String route) throws IOException {
        Problems.send(
                response,
                422,
                "Idempotency-Key reused with another request",
                "The " + IdempotencyKey.HEADER + " '" + key + "' was already used for a different request to " + route
                        + " (another body, content type or query string). Send a new key for a new operation; reuse a key only"
                        + " to retry the identical request.");
    }

    /**
     * Answers 409 with {@code Retry-After}: a request with the key is still in flight.
     *
     * @param route the request's method and path
     * @param retryAfter how long to wait, sent in whole seconds rounded up
     */
    public static void inFlight(HttpServletResponse response, String key, String route, Duration retryAfter)
            throws IOException {
        long seconds = (retryAfter.toMillis() + 999) / 1000;
        response.setHeader("Retry-After", Long.toString(seconds));
        Problems.send(
                response,
                409,
                "Request with this Idempotency-Key still in progress",
                "A request with " + IdempotencyKey.HEADER + " '" + key + "' to " + route
                        + " is still being processed. Retry" + " the same request with the same key after " + seconds
                        + " s to receive its response.");
    }
}
