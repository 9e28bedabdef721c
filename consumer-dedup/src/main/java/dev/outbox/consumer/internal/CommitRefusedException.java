package dev.outbox.consumer.internal;

import java.sql.SQLException;

/**
 * PostgreSQL refused to commit a transaction for a reason other than a lost connection (a deferred
 * constraint, a constraint trigger, a serialization failure): what the transaction wrote is the
 * cause, so one of its records is.
 */
final class CommitRefusedException extends Exception {
    CommitRefusedException(SQLException cause) {
        super("commit refused (SQLState " + cause.getSQLState() + "): " + cause.getMessage(), cause);
    }

    SQLException sqlException() {
        return (SQLException) getCause();
    }
}
