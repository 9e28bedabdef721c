package dev.outbox.core.internal;

import java.util.Collection;
import java.util.Comparator;
import java.util.Locale;

/**
 * The name a user most likely meant when they wrote one that does not exist: for the "did you mean"
 * of an unknown setting or property, wherever settings are read (the relay process, the Spring Boot
 * starter). Not part of the API.
 */
public final class NearestName {
    private NearestName() {}

    /**
     * @param name the name as written
     * @param known the names that exist
     * @return the shortest known name that {@code name} begins (a truncated name, at least 3 characters),
     *     else the known name fewest edits away if it is close enough to be a likely typo (at most 2 edits,
     *     or a quarter of its length), else null; case is ignored
     */
    public static String nearest(String name, Collection<String> known) {
        String lower = name.toLowerCase(Locale.ROOT);
        String extended = known.stream()
                .filter(k -> k.toLowerCase(Locale.ROOT).startsWith(lower) && lower.length() >= 3)
                .min(Comparator.comparingInt(String::length).thenComparing(k -> k))
                .orElse(null);
        if (extended != null) {
            return extended;
        }
        return known.stream()
                .min(Comparator.comparingInt((String k) -> distance(lower, k.toLowerCase(Locale.ROOT)))
                        .thenComparing(k -> k))
                .filter(k -> distance(lower, k.toLowerCase(Locale.ROOT)) <= Math.max(2, k.length() / 4))
                .orElse(null);
    }

    /** @return the Levenshtein distance: single-character insertions, deletions and substitutions */
    static int distance(String a, String b) {
        int[] prev = new int[b.length() + 1];
        int[] cur = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) {
            prev[j] = j;
        }
        for (int i = 1; i <= a.length(); i++) {
            cur[0] = i;
            for (int j = 1; j <= b.length(); j++) {
                int cost = a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1;
                cur[j] = Math.min(Math.min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + cost);
            }
            int[] t = prev;
            prev = cur;
            cur = t;
        }
        return prev[b.length()];
    }
}
