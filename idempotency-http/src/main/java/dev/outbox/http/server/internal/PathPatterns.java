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
     * @throws IllegalArgumentException when it does not start with {@code /} or has a {@code *} other
     *     than a trailing {@code /*}
     */
    public static String requireSupported(String pattern) {
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
