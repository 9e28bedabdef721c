package dev.outbox.consumer.internal;

import dev.outbox.core.internal.SqlStates;

/**
 * The bound on how long an insert of a processed id waits for a row another transaction holds (the
 * same message id inserted and not committed yet), as SQL sent around the statement in one round
 * trip: pgjdbc sends the statements of a multi-statement query before a single Sync.
 *
 * <p>{@link #BEFORE} keeps the session's {@code lock_timeout} aside in the placeholder setting
 * {@code outbox.lock_timeout} and sets {@code lock_timeout} to {@link #TIMEOUT}, or keeps the
 * session's when it is shorter (0, no bound, counts as longer); both settings are transaction-local
 * ({@code set_config(..., true)}). {@link #AFTER} puts the kept value back, so that the statements
 * after the insert in the same transaction wait as the session says. When the insert fails, {@link
 * #AFTER} does not run, but the transaction is then aborted, and its rollback (or a rollback to a
 * savepoint taken before the insert) undoes the local settings. The kept value is read once, in a
 * subquery, so that neither {@code set_config} depends on the order of evaluation.
 */
public final class LockWaitBound {
    /** The longest wait: past it the insert fails with SQLState {@value #SQLSTATE}. */
    public static final String TIMEOUT = "2s";

    /** SQLState of a lock wait that went past its bound ({@code lock_not_available}). */
    public static final String SQLSTATE = SqlStates.LOCK_NOT_AVAILABLE;

    /** Sent before the statement; returns one row. */
    public static final String BEFORE = "select set_config('outbox.lock_timeout', t, true),"
            + " set_config('lock_timeout', case when t::interval = interval '0' or t::interval > interval '"
            + TIMEOUT + "' then '" + TIMEOUT + "' else t end, true)"
            + " from (select current_setting('lock_timeout') as t offset 0) s; ";

    /** Sent after the statement; returns one row. */
    public static final String AFTER =
            "; select set_config('lock_timeout', current_setting('outbox.lock_timeout'), true)";

    private LockWaitBound() {}

    /** @return {@code statement} with the bound set before it and the session's value put back after it */
    public static String around(String statement) {
        return BEFORE + statement + AFTER;
    }
}
