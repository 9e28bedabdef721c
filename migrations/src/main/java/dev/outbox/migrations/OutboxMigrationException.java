package dev.outbox.migrations;

/**
 * Migrating the outbox tables failed: the database could not be reached, the installed shard count could not be
 * read, or Flyway refused or failed to apply a migration. The message says which schema and, where known, which JDBC URL; the cause is the underlying
 * {@link java.sql.SQLException} or {@link org.flywaydb.core.api.FlywayException}.
 */
public final class OutboxMigrationException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    public OutboxMigrationException(String message, Throwable cause) {
        super(message, cause);
    }
}
