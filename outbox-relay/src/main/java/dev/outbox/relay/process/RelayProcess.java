package dev.outbox.relay.process;

import static dev.outbox.relay.process.RelaySettings.BACKOFF_BASE;
import static dev.outbox.relay.process.RelaySettings.BACKOFF_CAP;
import static dev.outbox.relay.process.RelaySettings.BOOTSTRAP_SERVERS;
import static dev.outbox.relay.process.RelaySettings.BREAKER_FAILURE_THRESHOLD;
import static dev.outbox.relay.process.RelaySettings.BREAKER_OPEN_DURATION;
import static dev.outbox.relay.process.RelaySettings.DB_PASSWORD;
import static dev.outbox.relay.process.RelaySettings.DB_POOL_SIZE;
import static dev.outbox.relay.process.RelaySettings.DB_USER;
import static dev.outbox.relay.process.RelaySettings.HTTP_HOST;
import static dev.outbox.relay.process.RelaySettings.HTTP_PORT;
import static dev.outbox.relay.process.RelaySettings.JDBC_URL;
import static dev.outbox.relay.process.RelaySettings.LEASE_DURATION;
import static dev.outbox.relay.process.RelaySettings.MIGRATE_SHARDS;
import static dev.outbox.relay.process.RelaySettings.SCHEMA;
import static dev.outbox.relay.process.RelaySettings.SHUTDOWN_TIMEOUT;
import static dev.outbox.relay.process.RelaySettings.STARTUP_TIMEOUT;

import com.zaxxer.hikari.HikariDataSource;
import dev.outbox.core.IdempotencyExempt;
import dev.outbox.core.internal.Durations;
import dev.outbox.core.retry.Backoff;
import dev.outbox.migrations.MigrationResult;
import dev.outbox.migrations.OutboxMigrations;
import dev.outbox.relay.Relay;
import io.micrometer.core.instrument.binder.jvm.ClassLoaderMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmGcMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.core.instrument.binder.system.ProcessorMetrics;
import io.micrometer.core.instrument.binder.system.UptimeMetrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.IOException;
import java.net.BindException;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import javax.sql.DataSource;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.postgresql.ds.PGSimpleDataSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The running relay process: pool, relay, metrics registry and HTTP server, started in the order
 * the operator can diagnose (settings, PostgreSQL, schema, Kafka, relay, HTTP) and closed in
 * reverse.
 */
final class RelayProcess implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(RelayProcess.class);

    /** How much longer than the relay's own shutdown timeout closing may take before the process gives up. */
    static final Duration CLOSE_MARGIN = Duration.ofSeconds(15);

    /**
     * The shortest wait of the start for PostgreSQL or Kafka, and of an admin command for PostgreSQL
     * (Hikari's shortest connection timeout).
     */
    static final long MIN_WAIT_MILLIS = 250;

    private final RelaySettings.Values settings;
    private final HikariDataSource pool;
    private final PrometheusMeterRegistry registry;
    private final JvmGcMetrics gcMetrics;
    private final Relay relay;
    private final HealthServer http;
    private final Object closeLock = new Object();
    private boolean closed;
    private boolean closedCleanly;

    private RelayProcess(
            RelaySettings.Values settings,
            HikariDataSource pool,
            PrometheusMeterRegistry registry,
            JvmGcMetrics gcMetrics,
            Relay relay,
            HealthServer http) {
        this.settings = settings;
        this.pool = pool;
        this.registry = registry;
        this.gcMetrics = gcMetrics;
        this.relay = relay;
        this.http = http;
    }

    /**
     * Checks PostgreSQL and Kafka, optionally migrates, then starts the relay and the HTTP server. The
     * checks share one startup-timeout: PostgreSQL answering the start's check, the pool's first
     * connection and the schema check on it, and Kafka answering all end within it, counted from here
     * (each wait is given at least 250 ms, should an earlier one end just before the deadline). The run of
     * the migrations is not counted, their first connection is.
     *
     * @param settings the validated settings
     * @param migrate whether to apply the outbox migrations first
     * @return the running process
     * @throws CliException exit code 2 for a setting the relay or the HTTP server refuses, 3 when
     *     PostgreSQL, the schema or Kafka is not there
     */
    static RelayProcess start(RelaySettings.Values settings, boolean migrate) {
        return start(settings, migrate, new StartStop());
    }

    /**
     * {@link #start(RelaySettings.Values, boolean)}, telling {@code stop} where it is.
     *
     * @throws StartStop.Stopped when {@code stop} was asked to stop before the migrations or the relay's
     *     start
     */
    static RelayProcess start(RelaySettings.Values settings, boolean migrate, StartStop stop) {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(startupDeadlineMillis(settings));
        String schema = settings.string(SCHEMA);
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        HikariDataSource pool = null;
        JvmGcMetrics gc = null;
        Relay relay = null;
        HealthServer http = null;
        boolean started = false;
        try {
            pool = pool(settings, true);
            pool.setMetricRegistry(registry);
            KafkaProducerMetrics.bindTo(registry);
            // Build (which validates) before any network call: a bad setting is exit 2, whatever is reachable.
            relay = buildRelay(settings, pool, registry);
            String instance = relay.instanceId();
            checkDatabase(settings, deadline);
            if (migrate) {
                // its own connections, without the relay's statement timeouts: a migration may scan the table
                MigrationResult result = null;
                HikariDataSource migrations = pool(settings, false);
                try {
                    firstConnection(migrations, settings, deadline, "the migrations' pool");
                    // the migrations run as long as they need: that is no wait for PostgreSQL to answer
                    long began = System.nanoTime();
                    stop.enter(StartStop.Phase.MIGRATING);
                    result = OutboxMigrations.migrate(migrations, schema, settings.integer(MIGRATE_SHARDS));
                    deadline += System.nanoTime() - began;
                } finally {
                    if (result != null) {
                        migrations.close();
                    } else {
                        closeInBackground(migrations);
                    }
                }
                LOG.info(
                        "outbox-relay[{}] migrations: {} applied, schema {} at version {}",
                        instance,
                        result.migrationsExecuted(),
                        schema,
                        result.schemaVersion());
                stop.enter(StartStop.Phase.HOLDING_NOTHING);
            }
            checkSchema(pool, settings, deadline);
            checkKafka(settings, deadline);
            int port = settings.integer(HTTP_PORT);
            if (port != 0) {
                Relay r = relay;
                try {
                    http = new HealthServer(
                            settings.string(HTTP_HOST),
                            port,
                            instance,
                            r::isLive,
                            r::isReady,
                            () -> r.ownedShards().size(),
                            registry);
                } catch (BindException e) {
                    // the port is taken, or the address is not one of this machine's
                    throw CliException.usage("Cannot listen on " + settings.string(HTTP_HOST) + ":" + port
                            + " (settings http-host, " + HTTP_HOST.envVar() + ", and http-port, "
                            + HTTP_PORT.envVar() + "): " + oneLine(e.getMessage())
                            + "; choose a free port (0 turns the HTTP server off), and an address of this machine"
                            + " (0.0.0.0 for all).");
                } catch (IOException e) {
                    // an address that does not resolve
                    throw CliException.usage("Cannot listen on " + settings.string(HTTP_HOST) + ":" + port
                            + " (setting http-host, " + HTTP_HOST.envVar() + "): " + oneLine(e.getMessage())
                            + "; give an address or host name of this machine (0.0.0.0 for all).");
                }
            }
            new ClassLoaderMetrics().bindTo(registry);
            new JvmMemoryMetrics().bindTo(registry);
            gc = new JvmGcMetrics();
            gc.bindTo(registry);
            new JvmThreadMetrics().bindTo(registry);
            new ProcessorMetrics().bindTo(registry);
            new UptimeMetrics().bindTo(registry);
            stop.enter(StartStop.Phase.STARTING_RELAY);
            try {
                relay.start();
            } catch (IllegalArgumentException e) {
                throw CliException.usage("Invalid relay configuration: " + oneLine(e.getMessage()));
            } catch (IllegalStateException e) {
                throw CliException.unavailable(
                        "The relay could not start on schema " + schema + " (setting schema, " + SCHEMA.envVar() + "): "
                                + oneLine(e.getMessage()),
                        e);
            } catch (RuntimeException e) {
                throw CliException.unavailable(
                        "The relay could not start: " + oneLine(String.valueOf(e.getMessage()))
                                + " (PostgreSQL at setting jdbc-url, " + JDBC_URL.envVar() + " = "
                                + redact(settings.string(JDBC_URL)) + ")",
                        e);
            }
            if (http != null) {
                http.start();
            }
            LOG.info("outbox-relay[{}] started: {}", instance, settings.describe());
            started = true;
            return new RelayProcess(settings, pool, registry, gc, relay, http);
        } finally {
            if (!started) {
                if (http != null) {
                    http.close();
                }
                if (relay != null) {
                    relay.close();
                }
                if (gc != null) {
                    gc.close();
                }
                if (pool != null) {
                    closeInBackground(pool);
                }
                registry.close();
            }
        }
    }

    /**
     * Closes the pool of a start (or an admin command) that failed without waiting for it: a pool's close
     * waits up to its connection timeout for a connection attempt under way, which a database that does
     * not answer keeps going, and the start has given up on that database already.
     */
    static void closeInBackground(HikariDataSource pool) {
        Thread closer = new Thread(pool::close, "outbox-relay-pool-close");
        closer.setDaemon(true);
        closer.start();
    }

    /**
     * A pool that starts with its first connection, the start's schema check (or the migrations): a pool
     * started at once would try to connect, and back off from its failed tries (up to 5 s between two),
     * while the start's check still waits for PostgreSQL, and could still be backing off when the check
     * has found it up, with little of startup-timeout left.
     *
     * @param timeouts whether to bound every statement and socket read by the lease (the relay's pool):
     *     {@code statement_timeout} and {@code lock_timeout} on the session and pgjdbc's {@code
     *     socketTimeout}, so that a black-holed connection fails within a lease instead of after the
     *     kernel's TCP timeout (about 15 minutes)
     */
    private static HikariDataSource pool(RelaySettings.Values settings, boolean timeouts) {
        HikariDataSource pool = new HikariDataSource();
        pool.setJdbcUrl(settings.string(JDBC_URL));
        String user = settings.string(DB_USER);
        if (!user.isEmpty()) {
            pool.setUsername(user);
        }
        String password = settings.string(DB_PASSWORD);
        if (!password.isEmpty()) {
            pool.setPassword(password);
        }
        pool.setMaximumPoolSize(settings.integer(DB_POOL_SIZE));
        pool.setMinimumIdle(1);
        pool.setPoolName("outbox-relay");
        // Do not fail the first connection at once: the start waits for it, with a message that names the setting.
        pool.setInitializationFailTimeout(-1);
        long timeout = connectionWaitMillis(settings);
        pool.setConnectionTimeout(timeout);
        pool.addDataSourceProperty("connectTimeout", String.valueOf(Math.max(1, timeout / 1000)));
        pool.addDataSourceProperty("ApplicationName", "outbox-relay");
        if (timeouts) {
            JdbcTimeouts t = JdbcTimeouts.forLease(settings.duration(LEASE_DURATION));
            pool.addDataSourceProperty("socketTimeout", String.valueOf(t.socketTimeoutSeconds()));
            pool.addDataSourceProperty("tcpKeepAlive", "true");
            pool.addDataSourceProperty("options", t.options());
            pool.setValidationTimeout(Math.max(250, Math.min(t.statementTimeoutMillis(), 5_000)));
        }
        return pool;
    }

    /**
     * @return how long one wait for a pooled connection lasts: the startup timeout, at most the lease (a
     *     lease round waiting longer for a connection would make no progress for longer than liveness
     *     allows) and at most 30 s, at least 250 ms (Hikari's minimum); the start waits for the pool's
     *     first connection only as long as is left of startup-timeout
     */
    static long connectionWaitMillis(RelaySettings.Values settings) {
        long wait = Math.min(
                settings.duration(STARTUP_TIMEOUT).toMillis(),
                settings.duration(LEASE_DURATION).toMillis());
        return Math.min(Math.max(wait, 250), 30_000);
    }

    /**
     * @return how long the start waits for PostgreSQL and Kafka to answer, in all: startup-timeout, whole
     *     (an admin command waits as long for PostgreSQL)
     */
    static long startupDeadlineMillis(RelaySettings.Values settings) {
        return Math.max(settings.duration(STARTUP_TIMEOUT).toMillis(), MIN_WAIT_MILLIS);
    }

    /**
     * @return the milliseconds left until {@code deadline} ({@link System#nanoTime()}), at least {@link
     *     #MIN_WAIT_MILLIS}: a wait that starts just before the deadline still gets a try
     */
    static long leftMillis(long deadline) {
        return Math.max(TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime()), MIN_WAIT_MILLIS);
    }

    /** A data source without a pool: the LISTEN connection is a session of its own. */
    private static DataSource listenDataSource(RelaySettings.Values s) {
        PGSimpleDataSource ds = new PGSimpleDataSource();
        ds.setUrl(s.string(RelaySettings.LISTEN_JDBC_URL));
        if (!s.string(DB_USER).isEmpty()) {
            ds.setUser(s.string(DB_USER));
        }
        if (!s.string(DB_PASSWORD).isEmpty()) {
            ds.setPassword(s.string(DB_PASSWORD));
        }
        ds.setApplicationName("outbox-relay-listen");
        return ds;
    }

    private static Relay buildRelay(RelaySettings.Values s, HikariDataSource pool, PrometheusMeterRegistry registry) {
        Map<String, Object> producer = KafkaProducerMetrics.addTo(new LinkedHashMap<>(s.producerProperties()));
        producer.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, s.string(BOOTSTRAP_SERVERS));
        try {
            // the settings the builder has go to their setters (see Setting#appliedBy); these combine several or are
            // the process's own
            Relay.Builder b = Relay.builder()
                    .dataSource(pool)
                    .producerProperties(producer)
                    .backoff(s.duration(BACKOFF_BASE), s.duration(BACKOFF_CAP))
                    .circuitBreaker(s.integer(BREAKER_FAILURE_THRESHOLD), s.duration(BREAKER_OPEN_DURATION))
                    .meterRegistry(registry);
            s.applyTo(b);
            if (!s.string(RelaySettings.LISTEN_JDBC_URL).isEmpty()) {
                b.listenDataSource(listenDataSource(s));
            }
            return b.build();
        } catch (IllegalArgumentException | IllegalStateException e) {
            throw CliException.usage(
                    "Invalid relay configuration: " + oneLine(e.getMessage())
                            + " (producer properties are set with --kafka.<property>, OUTBOX_RELAY_KAFKA_<PROPERTY> or kafka.<property>)");
        }
    }

    /** Between the start check's tries: 50 ms doubling up to 1 s, full jitter. */
    private static final Backoff START_CHECK_BACKOFF = Backoff.of(Duration.ofMillis(50), Duration.ofSeconds(1));

    /**
     * Connects, on a connection of its own (the relay's pool waits at most the lease for one, an admin
     * command's pool would retry a refused login for the whole wait), until PostgreSQL answers or
     * {@code deadline} has passed: the end of the startup-timeout of the start or of an admin command,
     * however long it is, which what follows the check shares. A refused login or a missing database is
     * not waited for.
     *
     * @param deadline when startup-timeout runs out ({@link System#nanoTime()})
     * @throws CliException (exit 3) naming jdbc-url, startup-timeout and the credentials' settings
     */
    @IdempotencyExempt(
            rules = IdempotencyExempt.RETRY_BUDGET,
            reason = "start-up check, once per process, bounded by startup-timeout; backs off with full jitter")
    static void checkDatabase(RelaySettings.Values s, long deadline) {
        boolean logged = false;
        int attempt = 0;
        while (true) {
            long remaining = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
            try {
                selectOne(s, remaining);
                return;
            } catch (SQLException e) {
                String state = e.getSQLState() == null ? "" : e.getSQLState();
                if (refusedForGood(state)) {
                    throw refusedAtOnce(s, e);
                }
                if (System.nanoTime() - deadline >= 0) {
                    throw cannotConnect(s, e);
                }
                if (!logged) {
                    logged = true;
                    LOG.info(
                            "outbox-relay PostgreSQL at {} not reachable yet ({}); trying again until startup-timeout ({})"
                                    + " has passed",
                            redact(s.string(JDBC_URL)),
                            oneLine(rootMessage(e)),
                            Durations.format(s.duration(STARTUP_TIMEOUT)));
                }
                try {
                    long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
                    Thread.sleep(Math.max(
                            1,
                            Math.min(left, START_CHECK_BACKOFF.delay(attempt++).toMillis())));
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    throw cannotConnect(s, e);
                }
            }
        }
    }

    private static void selectOne(RelaySettings.Values s, long timeoutMillis) throws SQLException {
        Properties p = new Properties();
        if (!s.string(DB_USER).isEmpty()) {
            p.setProperty("user", s.string(DB_USER));
        }
        if (!s.string(DB_PASSWORD).isEmpty()) {
            p.setProperty("password", s.string(DB_PASSWORD));
        }
        String seconds = String.valueOf(Math.max(1, (timeoutMillis + 999) / 1000));
        p.setProperty("connectTimeout", seconds);
        p.setProperty("loginTimeout", seconds);
        p.setProperty("socketTimeout", seconds);
        p.setProperty("ApplicationName", "outbox-relay");
        try (Connection c = DriverManager.getConnection(s.string(JDBC_URL), p);
                PreparedStatement st = c.prepareStatement("select 1");
                ResultSet rs = st.executeQuery()) {
            rs.next();
        }
    }

    /**
     * @return whether waiting cannot change the answer: a login the server refused (class 28), an unknown
     *     database (3D000), or a connection the driver gave up on before logging in (08004: the server asks for
     *     a password and none is set, an authentication method or SSL the two sides do not share)
     */
    private static boolean refusedForGood(String state) {
        return state.startsWith("28") || state.equals("3D000") || state.equals("08004");
    }

    /** A login or database PostgreSQL refused: waiting would not change the answer. */
    private static CliException refusedAtOnce(RelaySettings.Values s, SQLException e) {
        return connectFailure(
                s,
                e,
                "refused at once, not retried. Check the database name in the URL and the credentials (settings "
                        + DB_USER.name() + ", " + DB_USER.envVar() + ", and " + DB_PASSWORD.name() + ", "
                        + DB_PASSWORD.envVar() + ").");
    }

    /**
     * PostgreSQL did not answer within startup-timeout (the start's check or a pool's first connection, or
     * an admin command's pool).
     */
    static CliException cannotConnect(RelaySettings.Values s, SQLException e) {
        return connectFailure(s, e, startupTimeoutTail(s));
    }

    private static String startupTimeoutTail(RelaySettings.Values s) {
        return "waited " + Durations.format(s.duration(STARTUP_TIMEOUT)) + " (setting startup-timeout, "
                + STARTUP_TIMEOUT.envVar()
                + "). Check the URL, that PostgreSQL runs there, and db-user / db-password.";
    }

    /** @return exit 3, one line: the URL and its setting, the driver's message and SQLState, then {@code tail} */
    private static CliException connectFailure(RelaySettings.Values s, SQLException e, String tail) {
        return connectFailure(s, oneLine(rootMessage(e)), e.getSQLState(), e, tail);
    }

    /** @return exit 3, one line: the URL and its setting, what failed and its SQLState if any, then {@code tail} */
    private static CliException connectFailure(
            RelaySettings.Values s, String what, String sqlState, Throwable cause, String tail) {
        return CliException.unavailable(
                "Cannot connect to PostgreSQL at " + redact(s.string(JDBC_URL)) + " (setting jdbc-url, "
                        + JDBC_URL.envVar() + "): "
                        + what
                        + (sqlState == null ? "" : " [SQLState " + sqlState + "]")
                        + "; " + tail,
                cause);
    }

    /**
     * Counts the outbox tables in the schema on the pool's first connection: both the wait for that
     * connection and the query end by {@code deadline}, although the pool waits for a connection as long
     * as its connection timeout and the query may wait as long as its socket timeout.
     *
     * @throws CliException (exit 3) naming jdbc-url and startup-timeout when PostgreSQL did not answer in
     *     time, or the schema setting when the tables are not there
     */
    private static void checkSchema(HikariDataSource pool, RelaySettings.Values s, long deadline) {
        String schema = s.string(SCHEMA);
        String sql = "select count(*) from pg_catalog.pg_tables where schemaname = ?"
                + " and tablename in ('outbox_message', 'outbox_shard_lease', 'outbox_relay_member')";
        int tables;
        try {
            tables = beforeDeadline(s, deadline, "the relay's pool", () -> {
                try (Connection c = connect(pool);
                        PreparedStatement st = c.prepareStatement(sql)) {
                    st.setString(1, schema);
                    try (ResultSet rs = st.executeQuery()) {
                        rs.next();
                        return rs.getInt(1);
                    }
                }
            });
        } catch (SQLException e) {
            throw CliException.unavailable(
                    "Cannot read the outbox tables of schema " + schema + " (setting schema, " + SCHEMA.envVar() + "): "
                            + oneLine(e.getMessage()) + " [SQLState " + e.getSQLState() + "]",
                    e);
        }
        if (tables < 3) {
            throw CliException.unavailable(
                    "Schema " + schema + " at " + redact(s.string(JDBC_URL)) + " (setting schema, "
                            + SCHEMA.envVar()
                            + ") has no outbox tables: apply the outbox migrations there, or start the relay once with --migrate.",
                    null);
        }
    }

    /** Takes the pool's first connection, and keeps it in the pool, by {@code deadline}. */
    private static void firstConnection(HikariDataSource pool, RelaySettings.Values s, long deadline, String whose) {
        try {
            beforeDeadline(s, deadline, whose, () -> {
                connect(pool).close();
                return null;
            });
        } catch (SQLException e) {
            throw cannotConnect(s, e); // giving the connection back failed: it broke at once
        }
    }

    /** A pool that gave no connection, which {@link #beforeDeadline} reports as PostgreSQL not answering. */
    private static final class NoConnection extends Exception {
        private static final long serialVersionUID = 1L;

        NoConnection(SQLException cause) {
            super(cause);
        }

        SQLException sqlException() {
            return (SQLException) getCause();
        }
    }

    private static Connection connect(HikariDataSource pool) throws NoConnection {
        try {
            return pool.getConnection();
        } catch (SQLException e) {
            throw new NoConnection(e);
        }
    }

    /** What the start does with PostgreSQL on a pool's connection. */
    @FunctionalInterface
    private interface PoolWork<T> {
        T run() throws SQLException, NoConnection;
    }

    /**
     * Runs {@code work} on a thread of its own and waits for it until {@code deadline} (at least {@link
     * #MIN_WAIT_MILLIS}): a pool waits for a connection as long as its own connection timeout, and a
     * statement may wait as long as the connection's socket timeout, both longer than what is left of
     * startup-timeout once the start's check has taken some of it.
     *
     * @param whose the pool, for the message
     * @throws SQLException what {@code work} threw once it had a connection
     * @throws CliException (exit 3) naming jdbc-url and startup-timeout when the pool gave no connection or
     *     PostgreSQL did not answer by the deadline
     */
    private static <T> T beforeDeadline(RelaySettings.Values s, long deadline, String whose, PoolWork<T> work)
            throws SQLException {
        FutureTask<T> task = new FutureTask<>(work::run);
        Thread t = new Thread(task, "outbox-relay-startup-check");
        t.setDaemon(true);
        t.start();
        try {
            return task.get(leftMillis(deadline), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            t.interrupt(); // a wait for a pool's connection ends at once; the pool's close ends the rest
            throw connectFailure(
                    s,
                    whose + " got no connection, or no answer on it, before startup-timeout ran out (the start's"
                            + " check had connected)",
                    null,
                    e,
                    startupTimeoutTail(s));
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof NoConnection none) {
                // the pool gave up before the deadline: its connection timeout is shorter than what was left
                throw connectFailure(
                        s,
                        none.sqlException(),
                        whose + " waits for a connection as long as the shortest of startup-timeout ("
                                + Durations.format(s.duration(STARTUP_TIMEOUT)) + ", " + STARTUP_TIMEOUT.envVar()
                                + "), lease-duration (" + Durations.format(s.duration(LEASE_DURATION)) + ") and 30s."
                                + " Check the URL, that PostgreSQL runs there, and db-user / db-password.");
            }
            if (cause instanceof SQLException sql) {
                throw sql;
            }
            if (cause instanceof RuntimeException r) {
                throw r;
            }
            throw new IllegalStateException(whose + ": " + cause, cause);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            t.interrupt();
            throw CliException.unavailable(
                    "Interrupted while waiting for PostgreSQL at " + redact(s.string(JDBC_URL)) + " (setting jdbc-url, "
                            + JDBC_URL.envVar() + ")",
                    e);
        }
    }

    /**
     * Asks the cluster for its nodes with the producer's own connection settings, by {@code deadline} (at
     * least {@link #MIN_WAIT_MILLIS}): startup-timeout, which the checks of PostgreSQL before took their
     * share of.
     */
    private static void checkKafka(RelaySettings.Values s, long deadline) {
        String bootstrap = s.string(BOOTSTRAP_SERVERS);
        Duration timeout = s.duration(STARTUP_TIMEOUT);
        long left = leftMillis(deadline);
        Map<String, Object> props = new LinkedHashMap<>();
        for (var e : s.producerProperties().entrySet()) {
            if (AdminClientConfig.configNames().contains(e.getKey())) {
                props.put(e.getKey(), e.getValue());
            }
        }
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.CLIENT_ID_CONFIG, "outbox-relay-startup-check");
        int ms = (int) Math.min(Integer.MAX_VALUE, left);
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, ms);
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, ms);
        props.put(AdminClientConfig.SOCKET_CONNECTION_SETUP_TIMEOUT_MS_CONFIG, (long) Math.min(ms, 10_000));
        props.put(AdminClientConfig.SOCKET_CONNECTION_SETUP_TIMEOUT_MAX_MS_CONFIG, (long) Math.min(ms, 30_000));
        String where = "Kafka at " + bootstrap + " (setting bootstrap-servers, " + BOOTSTRAP_SERVERS.envVar() + ")";
        Admin admin;
        try {
            admin = Admin.create(props);
        } catch (RuntimeException e) {
            throw CliException.unavailable(where + " cannot be used: " + oneLine(rootMessage(e)), e);
        }
        try {
            int nodes = admin.describeCluster()
                    .nodes()
                    .get(left, TimeUnit.MILLISECONDS)
                    .size();
            LOG.debug("outbox-relay Kafka at {} answered: {} node(s)", bootstrap, nodes);
        } catch (TimeoutException e) {
            throw noAnswer(where, timeout, e);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof org.apache.kafka.common.errors.TimeoutException) {
                // the client's own timeout: no node answered, the same as ours running out
                throw noAnswer(where, timeout, e.getCause());
            }
            throw CliException.unavailable(
                    where + " refused the start-up check: " + oneLine(rootMessage(e.getCause()))
                            + ". Check the address and the security settings (kafka.security.protocol, kafka.sasl.*, kafka.ssl.*).",
                    e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw CliException.unavailable(where + ": interrupted while waiting for it to answer", e);
        } finally {
            admin.close(Duration.ZERO);
        }
    }

    private static CliException noAnswer(String where, Duration timeout, Throwable cause) {
        return CliException.unavailable(
                where + " did not answer within " + Durations.format(timeout)
                        + " of the start (setting startup-timeout, "
                        + STARTUP_TIMEOUT.envVar() + ", which the checks of PostgreSQL and Kafka share)."
                        + " Check the address, that the brokers run, and the security settings (kafka.security.protocol, kafka.sasl.*, kafka.ssl.*).",
                cause);
    }

    Relay relay() {
        return relay;
    }

    /**
     * Closes the relay (batches in flight finish, leases are handed back, membership is left), then
     * the HTTP server, the metrics and the pool. Idempotent.
     *
     * @return whether the relay closed within shutdown-timeout plus {@link #CLOSE_MARGIN}
     */
    boolean shutdown() {
        synchronized (closeLock) {
            if (closed) {
                return closedCleanly;
            }
            closed = true;
            String instance = relay.instanceId();
            Duration limit = settings.duration(SHUTDOWN_TIMEOUT).plus(CLOSE_MARGIN);
            LOG.info(
                    "outbox-relay[{}] shutting down: finishing batches in flight and handing back {} shard(s)",
                    instance,
                    relay.ownedShards().size());
            Thread closer = new Thread(relay::close, "outbox-relay-close");
            closer.setDaemon(true);
            closer.start();
            boolean clean;
            try {
                closer.join(limit.toMillis());
                clean = !closer.isAlive();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                clean = false;
            }
            if (clean) {
                // the relay logged which leases it handed back, and which it left to expire (a batch still in flight)
                LOG.info("outbox-relay[{}] stopped", instance);
            } else {
                LOG.error(
                        "outbox-relay[{}] did not close within {}: exiting anyway; its remaining leases expire after lease-duration",
                        instance,
                        Durations.format(limit));
            }
            if (http != null) {
                http.close();
            }
            gcMetrics.close();
            if (clean) {
                pool.close();
            }
            registry.close();
            closedCleanly = clean;
            return clean;
        }
    }

    @Override
    public void close() {
        shutdown();
    }

    /** The URL up to its parameters, which may carry secrets. */
    static String redact(String url) {
        int q = url.indexOf('?');
        return q < 0 ? url : url.substring(0, q);
    }

    static String oneLine(String s) {
        return s == null ? "" : s.replaceAll("\\s*[\\r\\n]+\\s*", " ").strip();
    }

    private static String rootMessage(Throwable t) {
        Throwable root = t;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        String m = t.getMessage();
        String r = root.getMessage();
        if (root == t || r == null) {
            return String.valueOf(m);
        }
        return m == null || m.contains(r) ? (m == null ? r : m) : m + ": " + r;
    }
}
