package dev.outbox.relay.internal;

import java.sql.SQLException;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * A fenced write of several shards waited for a lock past {@link Db#WRITE_LOCK_TIMEOUT}, and the rows
 * of {@link #shards()} are locked by another transaction (a session that updated or locked them and
 * has not ended). The write changed nothing. A {@link WriteQueue} fails those shards' requests with
 * this and runs the statement again for the others, so that one foreign row lock stops one shard, not
 * the relay.
 */
final class RowsLockedException extends SQLException {
    private static final long serialVersionUID = 1L;

    /** SQLState {@code lock_not_available}: a lock wait ran past {@code lock_timeout} (or NOWAIT). */
    static final String LOCK_NOT_AVAILABLE = "55P03";

    /** Locked rows named in a message, at most. */
    private static final int NAMED = 10;

    @SuppressWarnings("serial") // never serialised: it lives within one relay
    private final SortedMap<Integer, List<Long>> locked;

    private final String table;

    /**
     * @param table the outbox table, schema-qualified
     * @param locked per shard, the ids of its rows locked by another transaction; not empty
     * @param timeout the write's failure
     */
    RowsLockedException(String table, Map<Integer, List<Long>> locked, SQLException timeout) {
        super(message(table, locked), LOCK_NOT_AVAILABLE, timeout);
        if (locked.isEmpty()) {
            throw new IllegalArgumentException("no locked rows");
        }
        this.table = table;
        this.locked = Collections.unmodifiableSortedMap(new TreeMap<>(locked));
    }

    /** @return the shards with rows locked by another transaction */
    Set<Integer> shards() {
        return locked.keySet();
    }

    /** @return this failure as one shard's: its own locked rows only */
    RowsLockedException forShard(int shard) {
        List<Long> ids = locked.get(shard);
        if (ids == null) {
            throw new IllegalArgumentException("shard " + shard + " has no locked row");
        }
        if (locked.size() == 1) {
            return this;
        }
        return new RowsLockedException(table, Map.of(shard, ids), (SQLException) getCause());
    }

    private static String message(String table, Map<Integer, List<Long>> locked) {
        StringBuilder ids = new StringBuilder();
        int named = 0;
        int total = 0;
        for (Map.Entry<Integer, List<Long>> e : new TreeMap<>(locked).entrySet()) {
            for (long id : e.getValue()) {
                total++;
                if (named < NAMED) {
                    ids.append(named == 0 ? "" : ", ")
                            .append(id)
                            .append(" (shard ")
                            .append(e.getKey())
                            .append(')');
                    named++;
                }
            }
        }
        if (total > named) {
            ids.append(" and ").append(total - named).append(" more");
        }
        return "outbox rows " + ids + " are locked by another transaction; their shard deletes and publishes"
                + " nothing more until that transaction ends. The sessions holding locks on the table, oldest"
                + " transaction first: select l.pid, l.mode, a.state, a.xact_start, a.query from pg_locks l join"
                + " pg_stat_activity a using (pid) where l.relation = '" + table + "'::regclass order by a.xact_start";
    }
}
