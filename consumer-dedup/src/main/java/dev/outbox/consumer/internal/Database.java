package dev.outbox.consumer.internal;

import dev.outbox.migrations.OutboxMigrations;
import dev.outbox.migrations.internal.JooqVersionCheck;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Collection;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import javax.sql.DataSource;
import org.jooq.Configuration;
import org.jooq.ConnectionProvider;
import org.jooq.DSLContext;
import org.jooq.SQLDialect;
import org.jooq.exception.DataAccessException;
import org.jooq.impl.DSL;
import org.jooq.impl.DefaultConfiguration;
import org.jooq.impl.DefaultConnectionProvider;
import org.postgresql.core.BaseConnection;
import org.postgresql.core.TransactionState;

/** Connections, the consumer's own statements, and the handler's jOOQ context on a connection. */
final class Database {
    /** SQLState of a statement sent in a transaction that a failed statement aborted. */
    private static final String IN_FAILED_TRANSACTION = "25P02";

    /** Rows per purge statement: short transactions that never hold many row locks. */
    static final int PURGE_BATCH = 1000;

    private static final String SAVEPOINT = "outbox_record";

    /**
     * The longest the consumer's own dedup insert waits for a row another transaction holds (the same
     * message id inserted and not committed yet): a copy of the message processed in another partition,
     * or a consumer instance that lost the partition while its transaction stayed open: one cut off by a
     * network partition, whose session the server keeps until TCP gives up (about two hours by default),
     * or one whose process is paused (SIGSTOP, a frozen container), whose session stays for as long as
     * the process lives, since its kernel still answers TCP keepalives. Past it the insert fails with
     * 55P03 and the batch is retried after a backoff, without end, without using attempts or feeding the
     * database breaker, so that the wait neither holds a worker thread nor goes unseen; a server-side
     * {@code idle_in_transaction_session_timeout} for the consumer's role, or killing the paused
     * process, ends the holder's transaction (README). A shorter {@code lock_timeout} of the session is
     * kept.
     */
    static final String DEDUP_LOCK_TIMEOUT = LockWaitBound.TIMEOUT;

    // before a dedup insert: the lock wait bounded by DEDUP_LOCK_TIMEOUT; after it: the session's value put back, so
    // that the handlers wait as their sessions say (LockWaitBound). With a savepoint, the savepoint comes first, so
    // that a rollback to it puts the session's value back too
    private static final String BOUND_LOCK_WAIT = LockWaitBound.BEFORE;
    private static final String RESTORE_LOCK_WAIT = LockWaitBound.AFTER;

    private static final TransactionGuard TRANSACTION_GUARD = new TransactionGuard();

    private final DataSource dataSource;
    private final ConnectionProvider provider;
    private final Configuration handlerConfiguration;
    private final String insertSql;
    private final String savepointAndInsertSql;
    private final String bulkInsertSql;
    private final String replayInsertSql;
    private final String savepointAndReplayInsertSql;
    private final String bulkReplayInsertSql;
    private final String readmitSql;
    private final String insertDeadLetteredSql;
    private final String purgeSql;

    Database(Settings settings) {
        JooqVersionCheck.quiet();
        this.dataSource = settings.dataSource();
        if (settings.dsl() != null) {
            this.provider = settings.dsl().configuration().connectionProvider();
            this.handlerConfiguration = settings.dsl().configuration();
        } else {
            this.provider = null;
            this.handlerConfiguration = new DefaultConfiguration()
                    .set(SQLDialect.POSTGRES)
                    .set(OutboxMigrations.jooqSettings(settings.schema()));
        }
        String table = settings.schema() + ".processed_message";
        String insert = "insert into " + table + " (consumer, message_id) values (?, ?) on conflict do nothing";
        // One round trip: pgjdbc sends the statements before a single Sync.
        this.insertSql = BOUND_LOCK_WAIT + insert + RESTORE_LOCK_WAIT;
        this.savepointAndInsertSql = "savepoint " + SAVEPOINT + "; " + BOUND_LOCK_WAIT + insert + RESTORE_LOCK_WAIT;
        this.bulkInsertSql = BOUND_LOCK_WAIT + "insert into " + table
                + " (consumer, message_id) select ?, unnest(?::uuid[]) on conflict do nothing returning message_id"
                + RESTORE_LOCK_WAIT;
        // a replayed copy re-admits a DEAD_LETTERED id: the row becomes HANDLED in the record's
        // transaction (back to DEAD_LETTERED if it rolls back); a HANDLED id stays a duplicate
        String readmit = " on conflict (consumer, message_id) do update set outcome = 'HANDLED',"
                + " processed_at = clock_timestamp() where p.outcome = 'DEAD_LETTERED'";
        String replayInsert = "insert into " + table + " as p (consumer, message_id) values (?, ?)" + readmit;
        this.replayInsertSql = BOUND_LOCK_WAIT + replayInsert + RESTORE_LOCK_WAIT;
        this.savepointAndReplayInsertSql =
                "savepoint " + SAVEPOINT + "; " + BOUND_LOCK_WAIT + replayInsert + RESTORE_LOCK_WAIT;
        this.bulkReplayInsertSql = BOUND_LOCK_WAIT + "insert into " + table
                + " as p (consumer, message_id) select ?, unnest(?::uuid[])" + readmit
                + " and p.message_id = any(?::uuid[]) returning message_id" + RESTORE_LOCK_WAIT;
        // the lock wait's bound and the statement: pgjdbc sends both before one Sync, so in autocommit they run as
        // one implicit transaction, which the bound's local setting lasts for
        this.readmitSql = BOUND_LOCK_WAIT + "delete from " + table
                + " where consumer = ? and message_id = any(?::uuid[])" + " and outcome = 'DEAD_LETTERED'";
        this.insertDeadLetteredSql = BOUND_LOCK_WAIT + "insert into " + table
                + " (consumer, message_id, outcome) values (?, ?, 'DEAD_LETTERED') on conflict do nothing";
        // every instance of a consumer purges on its own schedule: skip rows another purge has locked,
        // so concurrent purges delete disjoint batches instead of waiting on each other's row locks
        this.purgeSql = "delete from " + table + " where ctid = any(array(select ctid from " + table
                + " where consumer = ? and processed_at < clock_timestamp() - make_interval(secs => ?) limit "
                + PURGE_BATCH + " for update skip locked))";
    }

    Connection acquire() throws SQLException {
        if (provider != null) {
            try {
                return provider.acquire();
            } catch (DataAccessException e) {
                if (e.getCause() instanceof SQLException sql) {
                    throw sql;
                }
                throw new SQLException("jOOQ connection provider failed: " + e.getMessage(), "08001", e);
            }
        }
        return dataSource.getConnection();
    }

    void release(Connection connection) {
        try {
            if (provider != null) {
                provider.release(connection);
            } else {
                connection.close();
            }
        } catch (SQLException | RuntimeException e) {
            // a broken connection; the pool discards it
        }
    }

    /**
     * The handler's context, bound to the consumer's transaction on {@code connection}, which it may
     * not end ({@link TransactionGuard}).
     */
    DSLContext handlerContext(Connection connection) {
        return DSL.using(handlerConfiguration
                .derive(new DefaultConnectionProvider(TransactionGuard.guard(connection)))
                .derive(new SavepointTransactionProvider(connection))
                .deriveAppending(TRANSACTION_GUARD));
    }

    /**
     * Inserts the dedup row, inside a new savepoint when {@code savepoint} is set.
     *
     * @return whether a row was inserted (false: a duplicate)
     */
    boolean insertProcessed(Connection connection, String consumer, UUID messageId, boolean savepoint, boolean replay)
            throws SQLException {
        String sql = replay
                ? (savepoint ? savepointAndReplayInsertSql : replayInsertSql)
                : (savepoint ? savepointAndInsertSql : insertSql);
        try (PreparedStatement ps = connection.prepareStatement(sql)) {
            ps.setString(1, consumer);
            ps.setObject(2, messageId);
            ps.execute(); // the savepoint if any, the lock wait's bound, the insert, the bound put back
            if (savepoint) {
                ps.getMoreResults(Statement.CLOSE_CURRENT_RESULT); // from the savepoint to the bound
            }
            boolean isResultSet = ps.getMoreResults(Statement.CLOSE_CURRENT_RESULT);
            int count = isResultSet ? -1 : ps.getUpdateCount();
            if (count < 0 || count > 1) {
                throw new SQLException(
                        "unexpected update count " + count + " from the processed_message insert", "XX000");
            }
            return count == 1;
        }
    }

    /**
     * Inserts the dedup rows of a whole batch in one statement.
     *
     * @param replay ids whose records carry the replay header: re-admitted when dead-lettered
     * @return the ids that were inserted or re-admitted (the others were processed before, or repeat
     *     in the batch)
     */
    Set<UUID> insertProcessed(Connection connection, String consumer, List<UUID> messageIds, Set<UUID> replay)
            throws SQLException {
        Set<UUID> inserted = new HashSet<>();
        try (PreparedStatement ps =
                connection.prepareStatement(replay.isEmpty() ? bulkInsertSql : bulkReplayInsertSql)) {
            ps.setString(1, consumer);
            // distinct: an upsert may not touch one row twice in a statement
            Object[] ids = replay.isEmpty() ? messageIds.toArray() : new LinkedHashSet<>(messageIds).toArray();
            ps.setArray(2, connection.createArrayOf("uuid", ids));
            if (!replay.isEmpty()) {
                ps.setArray(3, connection.createArrayOf("uuid", replay.toArray()));
            }
            ps.execute(); // the lock wait's bound, the insert, the bound put back
            if (!ps.getMoreResults(Statement.CLOSE_CURRENT_RESULT)) {
                throw new SQLException("no rows returned by the processed_message insert", "XX000");
            }
            try (ResultSet rs = ps.getResultSet()) {
                while (rs.next()) {
                    inserted.add(rs.getObject(1, UUID.class));
                }
            }
        }
        return inserted;
    }

    void rollbackToSavepoint(Connection connection) throws SQLException {
        try (Statement st = connection.createStatement()) {
            st.execute("rollback to savepoint " + SAVEPOINT);
        }
    }

    /**
     * Records a dead-lettered message in one autocommit statement, waiting at most {@link
     * #DEDUP_LOCK_TIMEOUT} for a row another transaction holds (55P03 past it).
     */
    void insertDeadLettered(String consumer, UUID messageId) throws SQLException {
        autocommit(insertDeadLetteredSql, ps -> {
            ps.setString(1, consumer);
            ps.setObject(2, messageId);
            return boundedUpdate(ps);
        });
    }

    /**
     * @return how many of the ids were DEAD_LETTERED and are now deleted, in one autocommit statement
     *     that waits at most {@link #DEDUP_LOCK_TIMEOUT} for a row another transaction holds (55P03 past it)
     */
    int readmit(String consumer, Collection<UUID> messageIds) throws SQLException {
        return autocommit(readmitSql, ps -> {
            ps.setString(1, consumer);
            ps.setArray(2, ps.getConnection().createArrayOf("uuid", messageIds.toArray()));
            return boundedUpdate(ps);
        });
    }

    /** @return rows deleted by one purge statement */
    int purgeBatch(String consumer, double olderThanSeconds) throws SQLException {
        return autocommit(purgeSql, ps -> {
            ps.setString(1, consumer);
            ps.setDouble(2, olderThanSeconds);
            return ps.executeUpdate();
        });
    }

    @FunctionalInterface
    private interface StatementWork {
        int run(PreparedStatement ps) throws SQLException;
    }

    /** Runs one statement as its own transaction on a pooled connection. */
    private int autocommit(String sql, StatementWork work) throws SQLException {
        Connection connection = acquire();
        try {
            boolean autoCommit = connection.getAutoCommit();
            if (!autoCommit) {
                connection.setAutoCommit(true);
            }
            try (PreparedStatement ps = connection.prepareStatement(sql)) {
                return work.run(ps);
            } finally {
                if (!autoCommit) {
                    connection.setAutoCommit(false);
                }
            }
        } finally {
            release(connection);
        }
    }

    /** @return the update count of a statement sent after {@link #BOUND_LOCK_WAIT} */
    private static int boundedUpdate(PreparedStatement ps) throws SQLException {
        ps.execute(); // the bound's row first
        if (ps.getMoreResults(Statement.CLOSE_CURRENT_RESULT) || ps.getUpdateCount() < 0) {
            throw new SQLException("no update count after the lock wait's bound", "XX000");
        }
        return ps.getUpdateCount();
    }

    /**
     * Whether the connection still answers the server's round trip ({@link Connection#isValid}) within
     * {@code timeoutSeconds}. A connection the server closed (08xxx; 57P01..57P03 end the session) or
     * that does not answer in time does not; a transaction a failed statement aborted does not make
     * it unusable (pgjdbc's check sends an empty query and counts 25P02 as an answer).
     */
    static boolean answers(Connection connection, int timeoutSeconds) {
        try {
            return connection.isValid(timeoutSeconds);
        } catch (SQLException | RuntimeException e) {
            return false;
        }
    }

    /**
     * Whether a statement in the transaction failed (PostgreSQL then refuses everything but a
     * rollback, and a commit rolls back without an error). Read from pgjdbc's protocol state without a
     * round trip when the connection unwraps to pgjdbc's; otherwise (a pool or proxy that hides the
     * driver) the server is asked with one statement, which an aborted transaction refuses with
     * SQLState 25P02.
     */
    static boolean transactionFailed(Connection connection) {
        try {
            if (connection.isWrapperFor(BaseConnection.class)) {
                return connection.unwrap(BaseConnection.class).getTransactionState() == TransactionState.FAILED;
            }
        } catch (SQLException e) {
            // cannot tell from the driver: ask the server
        }
        try (Statement probe = connection.createStatement()) {
            probe.execute("select 1");
            return false;
        } catch (SQLException e) {
            // any other failure (a lost connection) is reported by the commit that follows
            return IN_FAILED_TRANSACTION.equals(e.getSQLState());
        }
    }
}
