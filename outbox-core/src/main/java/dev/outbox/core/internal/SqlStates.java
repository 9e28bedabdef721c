package dev.outbox.core.internal;

import java.sql.SQLException;

/**
 * Reads the SQLState a failure carries, whichever layer wrapped it (jOOQ, Spring, Hibernate, a
 * handler's own exception). Not part of the public API.
 */
public final class SqlStates {

    /** {@code lock_not_available}: a lock wait went past {@code lock_timeout}, or a {@code nowait} lock was taken. */
    public static final String LOCK_NOT_AVAILABLE = "55P03";

    /** {@code query_canceled}: the statement ran past {@code statement_timeout}, or was cancelled. */
    public static final String QUERY_CANCELED = "57014";

    /** {@code idle_in_transaction_session_timeout}: the server ended a session idle in its transaction. */
    public static final String IDLE_IN_TRANSACTION_TIMEOUT = "25P03";

    /** {@code serialization_failure}. */
    public static final String SERIALIZATION_FAILURE = "40001";

    /** {@code deadlock_detected}. */
    public static final String DEADLOCK_DETECTED = "40P01";

    /** Class 08, {@code connection_exception}: the connection was refused, lost or broken. */
    public static final String CONNECTION_EXCEPTION_CLASS = "08";

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
