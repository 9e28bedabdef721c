package dev.outbox.http.server;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Locale;

/**
 * Identifies a request's content, so that a key reused with a different request is refused (422)
 * instead of replaying a response that belongs to something else.
 */
@FunctionalInterface
public interface RequestFingerprint {

    /**
     * @param method the HTTP method
     * @param path the path inside the application; with {@code ?} and the query string when the
     *     filter calls this method (see {@link #fingerprint(String, String, String, String, byte[])})
     * @param contentType the request's content type, or null
     * @param body the request body, empty for none; for a form whose body a filter ahead of the
     *     filter parsed into the request's parameters, the canonical encoding of those parameters
     *     (see {@link #sha256()})
     * @return the fingerprint, not empty
     */
    String fingerprint(String method, String path, String contentType, byte[] body);

    /**
     * The fingerprint the filter asks for. The default passes the query string on as part of the
     * path ({@code /transfers?dry_run=true}), so that a fingerprint written against {@link
     * #fingerprint(String, String, String, byte[])} covers it too.
     *
     * @param method the HTTP method
     * @param path the path inside the application, without the query string
     * @param query the raw query string (after {@code ?}), or null when the request has none (an
     *     empty query, a bare {@code ?}, is not null)
     * @param contentType the request's content type, or null
     * @param body the request body, empty for none; for a form whose body a filter ahead of the
     *     filter parsed into the request's parameters, the canonical encoding of those parameters
     *     (see {@link #sha256()})
     * @return the fingerprint, not empty
     */
    default String fingerprint(String method, String path, String query, String contentType, byte[] body) {
        return fingerprint(method, query == null ? path : path + "?" + query, contentType, body);
    }

    /**
     * The default: hex SHA-256 over the method, the path, the query string when there is one (as
     * sent: {@code a=1&b=2} and {@code b=2&a=1} differ, and no query differs from an empty one), the
     * content type (lower-cased, whitespace removed, so {@code application/json; charset=UTF-8}
     * equals {@code application/json;charset=utf-8}) and the body bytes, each length-prefixed so that no two
     * different requests hash the same input. The body is compared byte for byte: a client that
     * re-serialises its JSON with other whitespace or key order between attempts gets 422; send the
     * same bytes on every retry (the client in this module does).
     *
     * <p>A form ({@code application/x-www-form-urlencoded}) whose body a filter ahead of the filter
     * has read and parsed into the request's parameters (Spring's {@code FormContentFilter} for PUT,
     * PATCH and DELETE; the container for a POST once a filter called {@code getParameter}) has no
     * bytes left to compare. Its body is then the canonical encoding of the request's parameters:
     * every name with each of its values, in the order the request gives them, URL-encoded in UTF-8
     * and joined by {@code &}. The parameters merge the query string's fields with the form's, and
     * the query string counts as sent as well, so the key covers the form's fields as the handler
     * reads them: another value, another order of one name's values, or another field is refused;
     * two encodings of the same fields ({@code a=%41} and {@code a=A}), or one name's values with
     * other fields between them ({@code a=1&b=2&a=3} and {@code a=1&a=3&b=2}), which the parsed
     * parameters do not tell apart either, are one request.
     *
     * @return the fingerprint function
     */
    static RequestFingerprint sha256() {
        return new RequestFingerprint() {
            @Override
            public String fingerprint(String method, String path, String contentType, byte[] body) {
                return fingerprint(method, path, null, contentType, body);
            }

            @Override
            public String fingerprint(String method, String path, String query, String contentType, byte[] body) {
                MessageDigest digest;
                try {
                    digest = MessageDigest.getInstance("SHA-256");
                } catch (NoSuchAlgorithmException e) {
                    throw new IllegalStateException(
                            "the JVM has no SHA-256, which every Java platform must provide", e);
                }
                String normalizedType = contentType == null
                        ? ""
                        : contentType.toLowerCase(Locale.ROOT).replaceAll("\\s+", "");
                byte[][] parts;
                if (query == null) {
                    // the input of the fingerprints stored before the query string counted, so they still match
                    parts = new byte[][] {
                        method.getBytes(StandardCharsets.UTF_8),
                        path.getBytes(StandardCharsets.UTF_8),
                        normalizedType.getBytes(StandardCharsets.UTF_8),
                        body
                    };
                } else {
                    // a leading -1, which no length can be, keeps these inputs apart from the ones without query
                    digest.update(ByteBuffer.allocate(4).putInt(-1).array());
                    parts = new byte[][] {
                        method.getBytes(StandardCharsets.UTF_8),
                        path.getBytes(StandardCharsets.UTF_8),
                        query.getBytes(StandardCharsets.UTF_8),
                        normalizedType.getBytes(StandardCharsets.UTF_8),
                        body
                    };
                }
                for (byte[] part : parts) {
                    digest.update(ByteBuffer.allocate(4).putInt(part.length).array());
                    digest.update(part);
                }
                return "sha256:" + HexFormat.of().formatHex(digest.digest());
            }
        };
    }
}
