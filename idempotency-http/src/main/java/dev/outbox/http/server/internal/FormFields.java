package dev.outbox.http.server.internal;

import jakarta.servlet.http.HttpServletRequest;
import java.nio.charset.StandardCharsets;
import java.util.Locale;
import java.util.Map;

/**
 * The fields of a form ({@code application/x-www-form-urlencoded}) whose body a filter ahead of
 * {@code IdempotencyFilter} has read and parsed into the request's parameters: Spring's {@code
 * FormContentFilter} for PUT, PATCH and DELETE, or the container itself for a POST once a filter
 * called {@code getParameter}. The body is gone, but its fields are what the handler reads, so the
 * key's fingerprint covers them in a canonical encoding instead.
 */
public final class FormFields {
    private static final String FORM = "application/x-www-form-urlencoded";
    private static final char[] HEX = "0123456789ABCDEF".toCharArray();

    private FormFields() {}

    /** @return whether the content type is {@code application/x-www-form-urlencoded}, with or without parameters */
    public static boolean isForm(String contentType) {
        if (contentType == null) {
            return false;
        }
        int semicolon = contentType.indexOf(';');
        String type = semicolon < 0 ? contentType : contentType.substring(0, semicolon);
        return type.strip().toLowerCase(Locale.ROOT).equals(FORM);
    }

    /**
     * Whether the request is a form whose parameters hold more values than its query string has
     * fields: a container or a filter adds one value per field of the query string at most, so the
     * others came from the body, which was parsed as a whole. A body read and dropped leaves the
     * parameters of the query string only, and is not taken for a parsed one.
     *
     * @return whether the form's fields are among the request's parameters
     */
    public static boolean parsedAhead(HttpServletRequest request) {
        return isForm(request.getContentType())
                && values(request.getParameterMap()) > queryFields(request.getQueryString());
    }

    /**
     * @param query a raw query string, or null
     * @return how many fields it has at most: its non-empty {@code &}-separated parts
     */
    static int queryFields(String query) {
        if (query == null) {
            return 0;
        }
        int fields = 0;
        int start = 0;
        while (start <= query.length()) {
            int end = query.indexOf('&', start);
            if (end < 0) {
                end = query.length();
            }
            if (end > start) {
                fields++;
            }
            start = end + 1;
        }
        return fields;
    }

    /** @return how many values the parameters hold */
    static int values(Map<String, String[]> parameters) {
        int values = 0;
        for (String[] v : parameters.values()) {
            values += v == null ? 0 : v.length;
        }
        return values;
    }

    /**
     * The canonical encoding of parameters, as a form body would carry them: each name with each of
     * its values, names in the parameters' order and each name's values in theirs, {@code name=value}
     * joined by {@code &}; a null value as the bare name (a field without {@code =}), a name without
     * values likewise. Names and values are percent-encoded as {@link java.net.URLEncoder} does in
     * UTF-8 ({@code A-Z a-z 0-9 - . _ *} kept, space as {@code +}, every other byte {@code %XX}), so
     * that {@code &}, {@code =} and {@code %} inside them cannot be confused with the separators. An
     * unpaired surrogate is encoded as the three bytes of its code point (never valid UTF-8), not
     * replaced by {@code ?}, so that no two different names or values share an encoding.
     *
     * <p>The parameters include those of the query string (a request's parameters merge both); the
     * fingerprint covers the raw query string too, so with the same query string two encodings
     * differ exactly when the form's fields, as the handler sees them, do.
     *
     * @param parameters the request's parameters, in their order
     * @return the encoding, ASCII bytes
     */
    public static byte[] encode(Map<String, String[]> parameters) {
        StringBuilder out = new StringBuilder();
        boolean first = true;
        for (Map.Entry<String, String[]> e : parameters.entrySet()) {
            String name = e.getKey() == null ? "" : e.getKey();
            String[] values = e.getValue();
            if (values == null || values.length == 0) {
                field(out, first, name, null);
                first = false;
                continue;
            }
            for (String value : values) {
                field(out, first, name, value);
                first = false;
            }
        }
        return out.toString().getBytes(StandardCharsets.US_ASCII);
    }

    private static void field(StringBuilder out, boolean first, String name, String value) {
        if (!first) {
            out.append('&');
        }
        percentEncode(out, name);
        if (value != null) {
            out.append('=');
            percentEncode(out, value);
        }
    }

    private static void percentEncode(StringBuilder out, String s) {
        s.codePoints().forEach(cp -> {
            if ((cp >= 'a' && cp <= 'z')
                    || (cp >= 'A' && cp <= 'Z')
                    || (cp >= '0' && cp <= '9')
                    || cp == '-'
                    || cp == '.'
                    || cp == '_'
                    || cp == '*') {
                out.append((char) cp);
            } else if (cp == ' ') {
                out.append('+');
            } else if (cp < 0x80) {
                percent(out, cp);
            } else if (cp < 0x800) {
                percent(out, 0xC0 | (cp >> 6));
                percent(out, 0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                // an unpaired surrogate (U+D800 to U+DFFF) lands here too: bytes no valid UTF-8 has
                percent(out, 0xE0 | (cp >> 12));
                percent(out, 0x80 | ((cp >> 6) & 0x3F));
                percent(out, 0x80 | (cp & 0x3F));
            } else {
                percent(out, 0xF0 | (cp >> 18));
                percent(out, 0x80 | ((cp >> 12) & 0x3F));
                percent(out, 0x80 | ((cp >> 6) & 0x3F));
                percent(out, 0x80 | (cp & 0x3F));
            }
        });
    }

    private static void percent(StringBuilder out, int b) {
        out.append('%').append(HEX[(b >> 4) & 0xF]).append(HEX[b & 0xF]);
    }
}
