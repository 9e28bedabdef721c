package dev.outbox.relay.process;

import java.time.Duration;

/**
 * The timeouts of every relay connection, derived from the lease so that no statement and no socket
 * read outlives it: a relay cut from PostgreSQL without a reset (a black-holed route, a frozen
 * primary) gets an error within a lease, its lease round fails (and is retried: the relay stays live),
 * and {@code /health/ready} reports it.
 *
 * @param statementTimeoutMillis {@code statement_timeout}: a third of the lease, at least 1 s
 * @param lockTimeoutMillis {@code lock_timeout}: a sixth of the lease, at least 500 ms (a fenced
 *     delete waiting behind a migration's lock)
 * @param socketTimeoutSeconds pgjdbc's {@code socketTimeout}: the statement timeout plus 2 s, so the
 *     server cancels a slow statement before the client gives up on the socket
 */
record JdbcTimeouts(long statementTimeoutMillis, long lockTimeoutMillis, int socketTimeoutSeconds) {

    static JdbcTimeouts forLease(Duration lease) {
        long statement = Math.max(1_000, lease.toMillis() / 3);
        long lock = Math.max(500, lease.toMillis() / 6);
        int socket = (int) ((statement + 999) / 1000) + 2;
        return new JdbcTimeouts(statement, lock, socket);
    }

    /** @return the pgjdbc {@code options} value that sets both session timeouts */
    String options() {
        return "-c statement_timeout=" + statementTimeoutMillis + " -c lock_timeout=" + lockTimeoutMillis;
    }
}
