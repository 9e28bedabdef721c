package dev.outbox.core.internal;

import java.sql.SQLException;

/**
 * Reads the SQLState a failure carries, whichever layer wrapped it (jOOQ, Spring, Hibernate, a
 * handler's own exception). Not part of the public API.
 */
public final class SqlStates {

    /** Cause chains deeper than this are cut: a cycle that does not go through itself ends here. */
    private static final int MAX_DEPTH = 32;

    private SqlStates() {}

    /**
     * @param failure a failure and its causes
     * @return the SQLState of the first {@link SQLException} in the cause chain that has one, or null
     */
    public static String of(Throwable failure) {
        int depth = 0;
        for (Throwable t = failure; t != null && depth < MAX_DEPTH; t = t.getCause(), depth++) {
            if (t instanceof SQLException e && e.getSQLState() != null) {
                return e.getSQLState();
            }
        }
        return null;
    }

    /**
     * @param failure a failure and its causes
     * @return whether its SQLState ({@link #of}) is of class 40: a serialization failure or a
     *     deadlock, which say that what the transaction read may be stale
     */
    public static boolean isSerializationFailure(Throwable failure) {
        String state = of(failure);
        return state != null && state.startsWith("40");
    }
}
