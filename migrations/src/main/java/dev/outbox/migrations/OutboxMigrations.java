package dev.outbox.migrations;

import dev.outbox.migrations.internal.JooqVersionCheck;
import dev.outbox.migrations.jooq.Outbox;
import java.lang.reflect.Method;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.regex.Pattern;
import javax.sql.DataSource;
import org.flywaydb.core.api.configuration.FluentConfiguration;
import org.jooq.DSLContext;
import org.jooq.SQLDialect;
import org.jooq.conf.MappedSchema;
import org.jooq.conf.RenderMapping;
import org.jooq.conf.Settings;
import org.jooq.impl.DSL;

/**
 * Installs and upgrades the outbox tables, and binds the generated jOOQ classes to the schema that holds them.
 *
 * <h2>The tables</h2>
 * <ul>
 *   <li>{@code outbox_message}: the transactional outbox. Producers append rows in their business transaction; the
 *       relay publishes them to Kafka in {@code id} order per shard and deletes them after the acks. Rows that can
 *       never be published are parked ({@code parked_at} set) with their last error.</li>
 *   <li>{@code outbox_shard_lease}: one row per shard ({@code owner}, {@code epoch}, {@code lease_until}); relays
 *       lease shards instead of electing a leader, and every write they make to outbox rows is fenced by the
 *       epoch.</li>
 *   <li>{@code outbox_relay_member}: the live relays and their heartbeats, from which each relay computes its fair
 *       share of the shards.</li>
 *   <li>{@code processed_message}: the idempotent consumer's record of handled {@code (consumer, message_id)}
 *       pairs, purged after a retention.</li>
 *   <li>{@code idempotency_key}: the server side of the {@code Idempotency-Key} HTTP header: request fingerprint and
 *       stored response per {@code (scope, idem_key)}, purged after {@code expires_at}.</li>
 * </ul>
 * The jOOQ classes for them are generated from the migration scripts at build time, in package
 * {@code dev.outbox.migrations.jooq} (for example {@code dev.outbox.migrations.jooq.Tables.OUTBOX_MESSAGE}).
 *
 * <h2>Two ways to install</h2>
 * <p><b>Let this class run Flyway</b>, usually at application start:
 * <pre>{@code
 * OutboxMigrations.migrate(dataSource);                  // schema "outbox", 64 shards
 * OutboxMigrations.migrate(dataSource, "billing", 16);   // schema "billing", 16 shards
 * }</pre>
 * It keeps its own Flyway history table, {@value #HISTORY_TABLE}, inside the outbox schema, so it never mixes with
 * the history of the application's own Flyway migrations, even when both live in the same schema. It creates the
 * schema if needed, applies what is missing, and does nothing on a schema that is already current. Concurrent
 * calls from several instances are safe: Flyway serializes them with a lock.
 *
 * <p><b>Or run the scripts with your own Flyway</b>: add {@link #LOCATION} to your locations and give values for
 * both placeholders, {@value #SCHEMA_PLACEHOLDER} and {@value #SHARDS_PLACEHOLDER}. Flyway refuses to run the scripts
 * if either has no value.
 * <pre>{@code
 * Flyway.configure()
 *       .dataSource(dataSource)
 *       .locations(OutboxMigrations.LOCATION)
 *       .schemas("outbox")
 *       .table(OutboxMigrations.HISTORY_TABLE)
 *       .placeholders(OutboxMigrations.placeholders("outbox", 64))
 *       .load()
 *       .migrate();
 * }</pre>
 * The outbox scripts are numbered {@code V1} to {@code V8} and so on: a history table shared with your own scripts
 * cannot hold two {@code V1}, hence the outbox's own {@code table(...)}. The shard count must be the installed one
 * on every run (V5 makes it a check constraint on an upgrade from V4); {@link #configure} reads it for you.
 *
 * <h2>Choosing the schema</h2>
 * The schema must be a plain lowercase SQL identifier ({@code [a-z_][a-z0-9_]{0,62}}, not a reserved word, not
 * starting with {@code pg_}), because it is substituted unquoted into the scripts. It may be an existing schema
 * (for example {@code public}) that already holds other tables. Use the same name everywhere the library talks to
 * the database: {@link #jooqSettings(String)} and {@link #dsl(DataSource, String)} map the schema the jOOQ classes
 * were generated with ({@value #DEFAULT_SCHEMA}) to it.
 *
 * <h2>Choosing the shard count</h2>
 * Shards are the unit of ordering and of relay scale-out: {@code shard = stableHash(message_key) mod shards}. The
 * count is fixed when the tables are installed ({@code V2} creates one lease row per shard) and later calls with
 * another count change nothing. Pick it once, comfortably above the largest number of relay instances you will run
 * (each relay owns at least one shard to be useful); the default {@value #DEFAULT_SHARDS} suits most services.
 * Allowed range: {@value #MIN_SHARDS} to {@value #MAX_SHARDS}.
 */
public final class OutboxMigrations {

    /** The Flyway location of the outbox scripts, for {@code FluentConfiguration.locations(...)}. */
    public static final String LOCATION = "classpath:db/outbox";

    /**
     * The classpath folder of the same scripts as plain SQL, for Liquibase, psql or any other tool: the placeholders
     * filled in with schema {@value #DEFAULT_SCHEMA} and {@value #DEFAULT_SHARDS} shards, in the order of their file
     * names.
     */
    public static final String PLAIN_SQL_LOCATION = "db/outbox-plain-sql";

    /** The schema used when none is given, and the schema the jOOQ classes are generated with. */
    public static final String DEFAULT_SCHEMA = "outbox";

    /** The shard count used when none is given. */
    public static final int DEFAULT_SHARDS = 64;

    /** The smallest allowed shard count. */
    public static final int MIN_SHARDS = 1;

    /** The largest allowed shard count. */
    public static final int MAX_SHARDS = 4096;

    /** The Flyway placeholder that names the schema of the outbox tables. */
    public static final String SCHEMA_PLACEHOLDER = "outbox_schema";

    /** The Flyway placeholder that gives the shard count, fixed at install time. */
    public static final String SHARDS_PLACEHOLDER = "outbox_shards";

    /** The Flyway history table that {@link #migrate(DataSource, String, int)} keeps inside the outbox schema. */
    public static final String HISTORY_TABLE = "outbox_schema_history";

    /** The schema name baked into the generated jOOQ classes. */
    private static final String GENERATED_SCHEMA = Outbox.OUTBOX.getName();

    private static final String IDENTIFIER_RULE = "[a-z_][a-z0-9_]{0,62}";
    private static final Pattern IDENTIFIER = Pattern.compile(IDENTIFIER_RULE);

    /**
     * PostgreSQL's reserved key words, including those that may only name a function or a type: none of them can
     * name a schema without quotes.
     */
    private static final Set<String> RESERVED_WORDS = Set.of(
            "all",
            "analyse",
            "analyze",
            "and",
            "any",
            "array",
            "as",
            "asc",
            "asymmetric",
            "authorization",
            "binary",
            "both",
            "case",
            "cast",
            "check",
            "collate",
            "collation",
            "column",
            "concurrently",
            "constraint",
            "create",
            "cross",
            "current_catalog",
            "current_date",
            "current_role",
            "current_schema",
            "current_time",
            "current_timestamp",
            "current_user",
            "default",
            "deferrable",
            "desc",
            "distinct",
            "do",
            "else",
            "end",
            "except",
            "false",
            "fetch",
            "for",
            "foreign",
            "freeze",
            "from",
            "full",
            "grant",
            "group",
            "having",
            "ilike",
            "in",
            "initially",
            "inner",
            "intersect",
            "into",
            "is",
            "isnull",
            "join",
            "lateral",
            "leading",
            "left",
            "like",
            "limit",
            "localtime",
            "localtimestamp",
            "natural",
            "not",
            "notnull",
            "null",
            "offset",
            "on",
            "only",
            "or",
            "order",
            "outer",
            "overlaps",
            "placing",
            "primary",
            "references",
            "returning",
            "right",
            "select",
            "session_user",
            "similar",
            "some",
            "symmetric",
            "system_user",
            "table",
            "tablesample",
            "then",
            "to",
            "trailing",
            "true",
            "union",
            "unique",
            "user",
            "using",
            "variadic",
            "verbose",
            "when",
            "where",
            "window",
            "with");

    private OutboxMigrations() {}

    /**
     * Installs or upgrades the outbox tables in schema {@value #DEFAULT_SCHEMA} with {@value #DEFAULT_SHARDS}
     * shards.
     *
     * @see #migrate(DataSource, String, int)
     */
    public static MigrationResult migrate(DataSource dataSource) {
        return migrate(dataSource, DEFAULT_SCHEMA, DEFAULT_SHARDS);
    }

    /**
     * Installs or upgrades the outbox tables in the given schema with {@value #DEFAULT_SHARDS} shards.
     *
     * @see #migrate(DataSource, String, int)
     */
    public static MigrationResult migrate(DataSource dataSource, String schema) {
        return migrate(dataSource, schema, DEFAULT_SHARDS);
    }

    /**
     * Installs or upgrades the outbox tables in the given schema.
     *
     * <p>Creates the schema if it does not exist, records the applied scripts in {@value #HISTORY_TABLE} inside
     * that schema, and applies the scripts not applied yet. On a schema that is already current it applies nothing
     * and changes nothing. A schema that already holds other tables but no outbox history is accepted: the outbox
     * scripts are applied on top of what is there.
     *
     * @param dataSource where to connect; for the first install the user needs {@code CREATE} on the database,
     *                   also when the schema exists ({@code create schema if not exists} checks it first), later
     *                   only the right to create tables in the schema
     * @param schema     the schema for the outbox tables, a plain lowercase SQL identifier
     * @param shards     the shard count, {@value #MIN_SHARDS} to {@value #MAX_SHARDS}; only used when the lease
     *                   table is first created, ignored once it exists (then its row count is used, also for the
     *                   range guard that V5 adds on an upgrade)
     * @return how many migrations this call applied and the resulting version
     * @throws NullPointerException     if {@code dataSource} or {@code schema} is null
     * @throws IllegalArgumentException if {@code schema} is not a plain SQL identifier or {@code shards} is out of
     *                                  range
     * @throws OutboxMigrationException if the database cannot be reached (the message names the JDBC URL where the
     *                                  data source exposes it), the installed shard count cannot be read ({@link
     *                                  #installedShards}), a migration fails, or Flyway is not on the class path
     */
    public static MigrationResult migrate(DataSource dataSource, String schema, int shards) {
        requireFlyway();
        placeholders(schema, shards);
        Objects.requireNonNull(dataSource, "dataSource must not be null");
        return FlywayRunner.migrate(dataSource, schema, shards, checkConnection(dataSource));
    }

    /**
     * The Flyway configuration that {@link #migrate(DataSource, String, int)} uses: location {@link #LOCATION},
     * both placeholders, {@code schemas(schema)}, {@code createSchemas(true)}, history table
     * {@value #HISTORY_TABLE}, and a callback that sets {@code client_min_messages = warning} on its connections
     * (PostgreSQL's NOTICE that V1's {@code create schema if not exists} found the schema Flyway had just created is
     * no warning). Useful for {@code info()} or {@code validate()}, or to adjust a setting before
     * {@code load().migrate()}.
     *
     * @throws NullPointerException     if {@code dataSource} or {@code schema} is null
     * @throws IllegalArgumentException if {@code schema} is not a plain SQL identifier or {@code shards} is out of
     *                                  range
     * @throws OutboxMigrationException if Flyway is not on the class path, or the installed shard count cannot be
     *                                  read ({@link #installedShards})
     */
    public static FluentConfiguration configure(DataSource dataSource, String schema, int shards) {
        requireFlyway();
        Objects.requireNonNull(dataSource, "dataSource must not be null");
        requireValidShards(shards);
        // Once the lease table exists its row count is the shard count, whatever the caller passes: V5's
        // range guard, applied on an upgrade from V4, must bound the installed count, not the default.
        int installed = installedShards(dataSource, requireValidSchema(schema));
        return FlywayRunner.configure(dataSource, placeholders(schema, installed > 0 ? installed : shards), schema);
    }

    /**
     * The values of both Flyway placeholders, for applications that run the outbox scripts with their own Flyway:
     * {@code configuration.placeholders(OutboxMigrations.placeholders("outbox", 64))}. If the configuration has
     * other placeholders too, merge this map into them. On an existing install, pass the installed count ({@code
     * select count(*) from <schema>.outbox_shard_lease}): V5 bounds {@code shard} by this value when it is applied
     * as an upgrade. {@link #configure(DataSource, String, int)} does that by itself.
     *
     * @throws NullPointerException     if {@code schema} is null
     * @throws IllegalArgumentException if {@code schema} is not a plain SQL identifier or {@code shards} is out of
     *                                  range
     */
    public static Map<String, String> placeholders(String schema, int shards) {
        requireValidSchema(schema);
        requireValidShards(shards);
        return Map.of(SCHEMA_PLACEHOLDER, schema, SHARDS_PLACEHOLDER, Integer.toString(shards));
    }

    /**
     * jOOQ settings that run the generated classes against the given schema: a render mapping from the schema the
     * classes were generated with ({@value #DEFAULT_SCHEMA}) to {@code schema}. Combine them with your own settings
     * by copying the render mapping, or use them as they are.
     *
     * @throws NullPointerException     if {@code schema} is null
     * @throws IllegalArgumentException if {@code schema} is not a plain SQL identifier
     */
    public static Settings jooqSettings(String schema) {
        requireValidSchema(schema);
        return new Settings()
                .withRenderMapping(new RenderMapping()
                        .withSchemata(
                                new MappedSchema().withInput(GENERATED_SCHEMA).withOutput(schema)));
    }

    /**
     * A PostgreSQL {@link DSLContext} on the data source whose generated outbox tables render in {@code schema}.
     *
     * @throws NullPointerException     if {@code dataSource} or {@code schema} is null
     * @throws IllegalArgumentException if {@code schema} is not a plain SQL identifier
     * @see #jooqSettings(String)
     */
    public static DSLContext dsl(DataSource dataSource, String schema) {
        Objects.requireNonNull(dataSource, "dataSource must not be null");
        JooqVersionCheck.quiet();
        return DSL.using(dataSource, SQLDialect.POSTGRES, jooqSettings(schema));
    }

    /**
     * Checks that {@code schema} can name the outbox schema.
     *
     * @return {@code schema}
     * @throws NullPointerException     if it is null
     * @throws IllegalArgumentException if it is not a plain lowercase SQL identifier, is reserved in PostgreSQL, or
     *                                  starts with {@code pg_}
     */
    public static String requireValidSchema(String schema) {
        Objects.requireNonNull(schema, "schema must not be null");
        if (!IDENTIFIER.matcher(schema).matches()) {
            throw new IllegalArgumentException("schema \"" + schema + "\" is not a plain SQL identifier: it must match "
                    + IDENTIFIER_RULE + ", a lowercase letter or underscore followed by at most 62 lowercase letters,"
                    + " digits or underscores");
        }
        if (schema.startsWith("pg_")) {
            throw new IllegalArgumentException("schema \"" + schema
                    + "\" is not allowed: PostgreSQL reserves names starting with pg_ for system schemas");
        }
        if (RESERVED_WORDS.contains(schema)) {
            throw new IllegalArgumentException("schema \"" + schema
                    + "\" is a reserved word in PostgreSQL and cannot name a schema without quotes; pick another name");
        }
        return schema;
    }

    /**
     * The shard count the outbox in {@code schema} was installed with, which every producer must use.
     *
     * @param dataSource the database
     * @param schema the outbox schema, a plain SQL identifier
     * @return the rows of {@code schema.outbox_shard_lease}, or 0 when the table does not exist yet or the database
     *     cannot be reached (the migration then reports the connection failure itself)
     * @throws NullPointerException     if {@code dataSource} or {@code schema} is null
     * @throws IllegalArgumentException if {@code schema} is not a plain SQL identifier
     * @throws OutboxMigrationException if the lookup or the count fails other than by a lost connection: the role
     *                                  lacks {@code USAGE} on the schema or {@code SELECT} on the table (42501; the
     *                                  message names the grant), the server is shutting down, a statement timeout.
     *                                  A count taken as 0 would let a migration bound the shards by another number
     *                                  than the installed one
     */
    public static int installedShards(DataSource dataSource, String schema) {
        Objects.requireNonNull(dataSource, "dataSource must not be null");
        requireValidSchema(schema);
        Connection connection;
        try {
            connection = dataSource.getConnection();
        } catch (SQLException e) {
            return 0;
        }
        try (Connection c = connection;
                Statement st = c.createStatement()) {
            try (ResultSet rs =
                    st.executeQuery("select to_regclass('" + schema + ".outbox_shard_lease') is not null")) {
                if (!rs.next() || !rs.getBoolean(1)) {
                    return 0;
                }
            }
            try (ResultSet rs = st.executeQuery("select count(*) from " + schema + ".outbox_shard_lease")) {
                return rs.next() ? rs.getInt(1) : 0;
            }
        } catch (SQLException e) {
            String state = e.getSQLState();
            if (state != null && state.startsWith("08")) {
                return 0; // the connection broke: the migration reports it
            }
            throw new OutboxMigrationException(
                    "could not count the installed shards, the rows of " + schema + ".outbox_shard_lease (SQLState "
                            + state + "): " + e.getMessage()
                            + ("42501".equals(state)
                                    ? ". The role needs USAGE on schema " + schema + " and SELECT on the table: grant"
                                            + " usage on schema " + schema + " and grant select on " + schema
                                            + ".outbox_shard_lease to <the role>"
                                    : ""),
                    e);
        }
    }

    /**
     * Flyway is an optional dependency: the jOOQ classes, {@link #jooqSettings(String)} and {@link #dsl(DataSource,
     * String)} work without it (outbox-core needs only those), while running the scripts needs it.
     */
    private static void requireFlyway() {
        try {
            Class.forName("org.flywaydb.core.Flyway", false, OutboxMigrations.class.getClassLoader());
        } catch (ClassNotFoundException | LinkageError e) {
            throw new OutboxMigrationException(
                    "OutboxMigrations runs the outbox scripts with Flyway, which is not on the"
                            + " class path: add org.flywaydb:flyway-core and org.flywaydb:flyway-database-postgresql, or install"
                            + " the tables with the plain SQL scripts of " + PLAIN_SQL_LOCATION
                            + " (see the migrations README)",
                    e);
        }
    }

    private static void requireValidShards(int shards) {
        if (shards < MIN_SHARDS || shards > MAX_SHARDS) {
            throw new IllegalArgumentException(
                    "shards must be between " + MIN_SHARDS + " and " + MAX_SHARDS + ", got " + shards);
        }
    }

    /** Opens and closes one connection, so that an unreachable database fails with a message that says where. */
    private static String checkConnection(DataSource dataSource) {
        try (Connection connection = dataSource.getConnection()) {
            String url = connection.getMetaData().getURL();
            return url == null ? describeUrl(dataSource) : redact(url);
        } catch (SQLException e) {
            String url = describeUrl(dataSource);
            String reason = String.valueOf(e.getMessage()).strip();
            if (reason.endsWith(".")) {
                reason = reason.substring(0, reason.length() - 1);
            }
            throw new OutboxMigrationException(
                    "Cannot connect to PostgreSQL at " + url
                            + " to migrate the outbox tables: " + reason
                            + ". Check that PostgreSQL is running and reachable there, and that the JDBC URL, user and"
                            + " password are right.",
                    e);
        }
    }

    /** The JDBC URL of a data source that exposes one through a common getter, without its parameters. */
    static String describeUrl(DataSource dataSource) {
        for (String getter : new String[] {"getUrl", "getURL", "getJdbcUrl"}) {
            try {
                Method method = dataSource.getClass().getMethod(getter);
                if (method.getReturnType() == String.class
                        && method.invoke(dataSource) instanceof String url
                        && !url.isBlank()) {
                    return redact(url);
                }
            } catch (ReflectiveOperationException | RuntimeException e) {
                // this data source has no such getter; try the next one
            }
        }
        return "(JDBC URL unknown: " + dataSource.getClass().getName() + " does not expose it)";
    }

    /**
     * The URL up to the database name: drivers append every connection property to the URL they report, and some
     * of those may be secrets.
     */
    private static String redact(String url) {
        int parameters = url.indexOf('?');
        return parameters < 0 ? url : url.substring(0, parameters);
    }
}
