package dev.outbox.http.server.internal;

import java.util.List;

/**
 * The path patterns of {@code IdempotencyFilter}: exact ({@code /orders}), a prefix ({@code
 * /orders/*}, which matches {@code /orders} and everything below it) or {@code /*} for all.
 */
public final class PathPatterns {

    private PathPatterns() {}

    /**
     * @param pattern a pattern, not null
     * @return {@code pattern}
     * @throws IllegalArgumentException when it does not start with {@code /}, has a {@code *} other
     *     than a trailing {@code /*}, or is a route template ({@code /orders/{id}}), which request
     *     paths such as {@code /orders/42} would never equal
     */
    public static String requireSupported(String pattern) {
        int template = pattern.indexOf('{');
        if (template >= 0 || pattern.indexOf('}') >= 0) {
            int cut = template < 0 ? pattern.indexOf('}') : template;
            String prefix = pattern.substring(0, Math.max(0, pattern.lastIndexOf('/', cut)));
            throw new IllegalArgumentException("path pattern '" + pattern + "' is a route template: the filter compares"
                    + " request paths such as /orders/42 with it, letter by letter, and none would match, so those"
                    + " requests would run without a key; use the prefix " + prefix + "/* (it covers "
                    + (prefix.isEmpty() ? "every path" : prefix + " and every path below it") + ")");
        }
        String withoutWildcard = pattern.endsWith("/*") ? pattern.substring(0, pattern.length() - 2) : pattern;
        if (!pattern.startsWith("/") || withoutWildcard.contains("*")) {
            throw new IllegalArgumentException("path pattern '" + pattern
                    + "' is not supported: use an exact path (/orders), a prefix (/orders/*) or /*");
        }
        return pattern;
    }

    /**
     * @param patterns supported patterns
     * @param path a path inside the application, without the query string
     * @return whether any of the patterns matches the path
     */
    public static boolean matchesAny(List<String> patterns, String path) {
        for (String pattern : patterns) {
            if (pattern.equals("/*")) {
                return true;
            }
            if (pattern.endsWith("/*")) {
                String prefix = pattern.substring(0, pattern.length() - 2);
                if (path.equals(prefix) || path.startsWith(prefix + "/")) {
                    return true;
                }
            } else if (path.equals(pattern)) {
                return true;
            }
        }
        return false;
    }
}
