package dev.outbox.http.server;

import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A response as the key store keeps it: what a replay of the same request sends back.
 *
 * <p>Only the headers a replay needs are kept (see {@link IdempotencyFilter.Builder#storedHeaders});
 * cookies and hop-by-hop headers are never stored. A handler that answered with {@code
 * HttpServletResponse.sendError} is stored with the header {@value #SEND_ERROR} and its reason, if
 * any, as a {@code text/plain} body: a replay calls {@code sendError} again, so that the container's
 * error page answers (a filter of an earlier version, sharing the store, replays the reason as the
 * body it used to answer, with that header). Immutable.
 *
 * @param status the HTTP status, 100 to 599
 * @param headers header name to values, in the order given; names as the application set them
 * @param body the body bytes, empty for none
 */
public record StoredResponse(int status, Map<String, List<String>> headers, byte[] body) {
    /**
     * The stored header that marks a response the handler answered with {@code sendError}; its value
     * is {@code reason} when the body holds the reason (UTF-8), {@code none} when none was given. Not
     * sent by a replay, and refused as a {@link IdempotencyFilter.Builder#storedHeaders stored
     * header} of the application's.
     */
    public static final String SEND_ERROR = "Idempotency-Send-Error";

    /**
     * @throws NullPointerException when {@code headers} or {@code body} is null, or a header name or
     *     value is null
     * @throws IllegalArgumentException when {@code status} is outside 100 to 599
     */
    public StoredResponse {
        if (status < 100 || status > 599) {
            throw new IllegalArgumentException("status must be an HTTP status between 100 and 599, got " + status);
        }
        Objects.requireNonNull(headers, "headers may not be null; pass Map.of()");
        Objects.requireNonNull(body, "body may not be null; pass an empty array");
        Map<String, List<String>> copy = new LinkedHashMap<>();
        headers.forEach((name, values) -> copy.put(
                Objects.requireNonNull(name, "header name may not be null"),
                List.copyOf(Objects.requireNonNull(values, "values of header '" + name + "' may not be null"))));
        headers = Collections.unmodifiableMap(copy);
        body = body.clone();
    }

    /**
     * @param status the HTTP status
     * @param contentType the content type, or null for none
     * @param body the body
     * @return a response with at most a {@code Content-Type} header
     */
    public static StoredResponse of(int status, String contentType, byte[] body) {
        return new StoredResponse(
                status, contentType == null ? Map.of() : Map.of("Content-Type", List.of(contentType)), body);
    }

    /** @return a copy of the body */
    @Override
    public byte[] body() {
        return body.clone();
    }

    /**
     * @param name a header name, case-insensitive
     * @return its first value, or null
     */
    public String header(String name) {
        for (var e : headers.entrySet()) {
            if (e.getKey().equalsIgnoreCase(name) && !e.getValue().isEmpty()) {
                return e.getValue().get(0);
            }
        }
        return null;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof StoredResponse r
                && r.status == status
                && r.headers.equals(headers)
                && Arrays.equals(r.body, body);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * status + headers.hashCode()) + Arrays.hashCode(body);
    }

    @Override
    public String toString() {
        return "StoredResponse[status=" + status + ", headers=" + headers + ", body=" + body.length + " bytes]";
    }
}
