package dev.outbox.consumer.internal;

import dev.outbox.core.internal.SqlStates;
import java.sql.SQLException;
import java.sql.SQLRecoverableException;
import java.sql.SQLTransientException;

/** Classifies database failures: which ones pass by themselves and must not count as handler failures. */
final class SqlErrors {
    private SqlErrors() {}

    /**
     * @param failure a failure and its causes
     * @return whether it is a database failure that a retry can cure: connection lost or refused
     *     (class 08), serialization failure or deadlock (class 40), insufficient resources (class
     *     53), server shutting down or starting (57P01..57P03), lock timeout (55P03)
     */
    static boolean isTransient(Throwable failure) {
        int depth = 0;
        for (Throwable t = failure; t != null && depth < 32; t = t.getCause(), depth++) {
            if (t instanceof SQLTransientException || t instanceof SQLRecoverableException) {
                return true;
            }
            if (t instanceof SQLException e && isTransientState(e.getSQLState())) {
                return true;
            }
        }
        return false;
    }

    /**
     * @param failure a failure and its causes
     * @return whether it is lock contention that passes when the other transaction ends: a lock
     *     timeout (55P03), a serialization failure (40001) or a deadlock (40P01). Raised by a
     *     handler's own statements, it says nothing about the database's health.
     */
    static boolean isContention(Throwable failure) {
        String state = SqlStates.of(failure);
        return SqlStates.LOCK_NOT_AVAILABLE.equals(state)
                || SqlStates.SERIALIZATION_FAILURE.equals(state)
                || SqlStates.DEADLOCK_DETECTED.equals(state);
    }

    /**
     * @param failure what an insert of processed ids threw, and its causes
     * @return whether it waited for an id another open transaction holds: {@link #isContention}, or a
     *     statement cancelled (57014) by the session's {@code statement_timeout} when that is shorter
     *     than the insert's own lock wait. The insert of one consumer's ids can wait for nothing else,
     *     whereas a handler's 57014 may be a slow query and stays the handler's failure
     */
    static boolean isClaimWait(Throwable failure) {
        return isContention(failure) || SqlStates.QUERY_CANCELED.equals(SqlStates.of(failure));
    }

    /**
     * @param failure a failure and its causes
     * @return whether the server ended the session for idling in its transaction longer than {@code
     *     idle_in_transaction_session_timeout} (25P03): nothing was written, and it passes unless the
     *     wait between statements recurs (a handler waiting on something else, a paused process)
     */
    static boolean isIdleSessionEnded(Throwable failure) {
        return SqlStates.IDLE_IN_TRANSACTION_TIMEOUT.equals(SqlStates.of(failure));
    }

    static boolean isTransientState(String state) {
        if (state == null || state.length() != 5) {
            return false;
        }
        return state.startsWith(SqlStates.CONNECTION_EXCEPTION_CLASS)
                || state.startsWith("40")
                || state.startsWith("53")
                || state.equals("57P01")
                || state.equals("57P02")
                || state.equals("57P03")
                || state.equals(SqlStates.LOCK_NOT_AVAILABLE);
    }

    /** @return the SQLState of the first SQLException in the chain, or null */
    static String sqlState(Throwable failure) {
        return SqlStates.of(failure);
    }
}
