package dev.outbox.migrations;

/**
 * What one call of {@link OutboxMigrations#migrate(javax.sql.DataSource, String, int)} did.
 *
 * @param schema             the schema that holds the outbox tables
 * @param migrationsExecuted how many migrations this call applied; {@code 0} when the schema was already current
 * @param schemaVersion      the version of the outbox tables after this call, for example {@code "5"}; {@code null}
 *                           only if no migration has ever been applied, which cannot happen after a successful call
 */
public record MigrationResult(String schema, int migrationsExecuted, String schemaVersion) {

    /** @return {@code true} when this call applied no migration because the schema was already current */
    public boolean upToDate() {
        return migrationsExecuted == 0;
    }
}
