package dev.outbox.relay.process;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import dev.outbox.core.internal.Durations;
import dev.outbox.core.internal.SqlStates;
import dev.outbox.relay.admin.RelayAdmin;
import java.io.IOException;
import java.io.PrintStream;
import java.io.Reader;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.sql.SQLException;
import java.time.Duration;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The relay process: {@code java -jar outbox-relay-<version>-all.jar [command] [options]}.
 *
 * <p>Commands: {@code run} (the default) runs the relay until SIGTERM; {@code status}, {@code
 * parked list}, {@code parked requeue} and {@code parked purge} inspect and repair through {@link
 * RelayAdmin}; {@code doctor} checks the deployment for the failure modes of idempotency through
 * {@link dev.outbox.relay.admin.Doctor}. Settings come from flags, environment variables and a properties file, see {@link
 * RelaySettings} and {@code --help}.
 *
 * <p>Exit codes: 0 success (also after SIGTERM once the leases were handed back); 1 unexpected
 * failure, or shutdown took too long; 2 bad, unknown, missing or conflicting settings or
 * arguments (one line on standard error naming the setting); 3 PostgreSQL, the outbox schema or
 * Kafka not reachable at start (one line naming the setting and the address); 4 {@code doctor}
 * found a failing check.
 */
public final class Main {
    /** Environment variable naming the properties file, like {@code --config}. */
    public static final String CONFIG_ENV = "OUTBOX_RELAY_CONFIG";

    /** Exit code: success. */
    public static final int EXIT_OK = 0;

    /** How much longer than admin-timeout an admin command waits for a database that does not answer. */
    private static final long ADMIN_SOCKET_SLACK_SECONDS = 5;

    /** Exit code: unexpected failure, or the relay did not close within the shutdown timeout. */
    public static final int EXIT_FAILURE = 1;

    /** Exit code: bad, unknown, missing or conflicting settings or arguments. */
    public static final int EXIT_USAGE = CliException.USAGE;

    /** Exit code: PostgreSQL, the outbox schema or Kafka not reachable at start. */
    public static final int EXIT_UNAVAILABLE = CliException.UNAVAILABLE;

    /** Exit code: {@code doctor} found a failing check. */
    public static final int EXIT_CHECK_FAILED = DoctorCommand.CHECK_FAILED;

    private Main() {}

    /**
     * Runs the command line and exits the JVM with its exit code (for {@code run}, after SIGTERM).
     *
     * @param args the command line
     */
    public static void main(String[] args) {
        int code = run(args, System.getenv(), System.out, System.err);
        System.out.flush();
        System.exit(code);
    }

    /**
     * Runs the command line without exiting the JVM. The {@code run} command blocks until the JVM
     * shuts down (SIGTERM, SIGINT), then halts it with the exit code, so embed only the admin
     * commands this way.
     *
     * @param args the command line
     * @param env the environment (only {@code OUTBOX_RELAY_*} is read)
     * @param out standard output: help, command output
     * @param err standard error: one line per failure
     * @return the exit code
     */
    public static int run(String[] args, Map<String, String> env, PrintStream out, PrintStream err) {
        try {
            // quiet until the settings say otherwise: the default Logback configuration logs everything
            Logging.configure("WARN");
            DoctorCommand.Options doctor = DoctorCommand.Options.extract(args);
            CommandLine cl = CommandLine.parse(doctor.rest());
            if (cl.help()) {
                out.print(usage());
                return EXIT_OK;
            }
            String configFile = cl.config() != null ? cl.config() : env.get(CONFIG_ENV);
            Map<String, String> file =
                    configFile == null || configFile.isBlank() ? Map.of() : load(configFile, cl.config() != null);
            RelaySettings.Values settings = RelaySettings.resolve(
                    cl.settings(),
                    env,
                    file,
                    configFile == null ? "" : configFile,
                    !cl.command().isAdmin());
            if (cl.command().isAdmin()) {
                Logging.configure(
                        settings.isExplicit(RelaySettings.LOG_LEVEL)
                                ? settings.string(RelaySettings.LOG_LEVEL)
                                : "WARN",
                        settings.string(RelaySettings.LOG_FORMAT),
                        true);
                return admin(cl, settings, doctor, out, err);
            }
            Logging.configure(
                    settings.string(RelaySettings.LOG_LEVEL), settings.string(RelaySettings.LOG_FORMAT), false);
            return runRelay(cl, settings, err);
        } catch (RuntimeException e) {
            return report(e, err);
        }
    }

    private static Map<String, String> load(String name, boolean fromFlag) {
        String source = fromFlag ? "--config" : CONFIG_ENV;
        Properties p = new Properties();
        // UTF-8, as a Kubernetes ConfigMap or Secret holds it (Properties.load of a stream would read ISO-8859-1)
        try (Reader in = Files.newBufferedReader(Path.of(name), StandardCharsets.UTF_8)) {
            p.load(in);
        } catch (NoSuchFileException e) {
            throw CliException.usage("Cannot read the properties file " + name + " (" + source + "): no such file.");
        } catch (CharacterCodingException e) {
            throw CliException.usage("Cannot read the properties file " + name + " (" + source
                    + "): it is not UTF-8 text; save it as UTF-8.");
        } catch (IOException | IllegalArgumentException e) {
            throw CliException.usage("Cannot read the properties file " + name + " (" + source + "): "
                    + RelayProcess.oneLine(e.getMessage()));
        }
        return SettingsResolver.toMap(p);
    }

    private static int admin(
            CommandLine cl,
            RelaySettings.Values settings,
            DoctorCommand.Options doctor,
            PrintStream out,
            PrintStream err) {
        // the settings the doctor reads are checked before anything is contacted, as every other setting is
        DoctorCommand doctorCommand =
                cl.command() == CommandLine.Command.DOCTOR ? new DoctorCommand(settings, doctor, out) : null;
        // One startup-timeout for the whole wait for PostgreSQL: the check's tries and then the pool's first
        // connection share it, so that a check that passed late, or a database gone after it, is not waited
        // for a second startup-timeout (the relay's start shares it the same way, see RelayProcess.start).
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(RelayProcess.startupDeadlineMillis(settings));
        // the pool would retry a refused login until its wait has passed: refused at once instead
        RelayProcess.checkDatabase(settings, deadline);
        HikariConfig config = new HikariConfig();
        config.setJdbcUrl(settings.string(RelaySettings.JDBC_URL));
        if (!settings.string(RelaySettings.DB_USER).isEmpty()) {
            config.setUsername(settings.string(RelaySettings.DB_USER));
        }
        if (!settings.string(RelaySettings.DB_PASSWORD).isEmpty()) {
            config.setPassword(settings.string(RelaySettings.DB_PASSWORD));
        }
        config.setMaximumPoolSize(1);
        config.setMinimumIdle(0);
        config.setPoolName("outbox-relay-admin");
        config.setInitializationFailTimeout(-1);
        // what the check left of startup-timeout (at least Hikari's shortest wait, 250 ms, when the check
        // passed at its very end): also the bound of any later wait of the command for a connection
        config.setConnectionTimeout(RelayProcess.leftMillis(deadline));
        config.addDataSourceProperty("ApplicationName", "outbox-relay-admin");
        // every statement ends within admin-timeout, and a database that stops answering is given up on
        // a little later (the jdbc-url may carry neither options nor socketTimeout: RelaySettings refuses them)
        Duration adminTimeout = settings.duration(RelaySettings.ADMIN_TIMEOUT);
        config.addDataSourceProperty("options", "-c statement_timeout=" + adminTimeout.toMillis());
        config.addDataSourceProperty(
                "socketTimeout",
                String.valueOf(
                        adminTimeout.plusSeconds(ADMIN_SOCKET_SLACK_SECONDS).toSeconds()));
        HikariDataSource pool = new HikariDataSource(config);
        try {
            // the pool keeps the connection for the command
            pool.getConnection().close();
        } catch (SQLException e) {
            // the check above connected: PostgreSQL went away since, and the pool waited for it in vain for the
            // rest of startup-timeout; its close would wait as long again for the connection attempt under way
            RelayProcess.closeInBackground(pool);
            throw RelayProcess.cannotConnect(settings, e);
        }
        try (HikariDataSource ds = pool) {
            try {
                if (doctorCommand != null) {
                    return doctorCommand.run(ds, cl.json());
                }
                RelayAdmin relayAdmin = RelayAdmin.create(ds, settings.string(RelaySettings.SCHEMA));
                return new AdminCommands(relayAdmin, out, err).run(cl);
            } catch (RuntimeException e) {
                throw refused(timedOut(e, adminTimeout), settings);
            }
        }
    }

    /**
     * @return an unavailable-exit failure naming admin-timeout when {@code e} is a statement cancelled
     *     by it (57014) or a connection that stopped answering (class 08); else {@code e} itself
     */
    private static RuntimeException timedOut(RuntimeException e, Duration adminTimeout) {
        String state = SqlStates.of(e);
        if (state == null
                || !(state.equals(SqlStates.QUERY_CANCELED)
                        || state.startsWith(SqlStates.CONNECTION_EXCEPTION_CLASS))) {
            return e;
        }
        return CliException.unavailable(
                (state.equals(SqlStates.QUERY_CANCELED)
                                ? "A statement of the command ran longer than "
                                : "PostgreSQL stopped answering or the connection broke (within ")
                        + Durations.format(adminTimeout)
                        + (state.equals(SqlStates.QUERY_CANCELED) ? "" : " of a statement's start")
                        + ", setting admin-timeout, " + RelaySettings.ADMIN_TIMEOUT.envVar()
                        + "): " + RelayProcess.oneLine(String.valueOf(e.getMessage())) + " [SQLState " + state
                        + "]. Check that the database answers and what locks the outbox tables; raise admin-timeout"
                        + " for a count over a very large backlog",
                e);
    }

    /**
     * @return an unavailable-exit failure naming the setting to check when {@code e} says the outbox
     *     tables are not where the schema setting points (42P01, 3F000) or the role may not use them
     *     (42501); else {@code e} itself
     */
    private static RuntimeException refused(RuntimeException e, RelaySettings.Values settings) {
        String state = e instanceof CliException ? null : SqlStates.of(e);
        if (state == null) {
            return e;
        }
        String schema = settings.string(RelaySettings.SCHEMA);
        String cause = RelayProcess.oneLine(databaseMessage(e));
        if (state.equals("42P01") || state.equals("3F000")) {
            return CliException.unavailable(
                    "Schema " + schema + " (setting schema, " + RelaySettings.SCHEMA.envVar()
                            + ") has no outbox tables: " + cause + " [SQLState " + state
                            + "]. Name the schema the outbox was installed in, or install it (the relay's --migrate)",
                    e);
        }
        if (state.equals("42501")) {
            String user = settings.string(RelaySettings.DB_USER);
            return CliException.unavailable(
                    "The database role" + (user.isEmpty() ? "" : " " + user) + " (setting db-user, "
                            + RelaySettings.DB_USER.envVar() + ") may not do what the command needs in schema "
                            + schema + ": " + cause + " [SQLState " + state
                            + "]. Grant it the relay's privileges (outbox-relay README), or use the relay's role",
                    e);
        }
        return e;
    }

    /** @return the message of the first SQLException with a SQLState in {@code e}'s chain */
    private static String databaseMessage(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof SQLException sql && sql.getSQLState() != null) {
                return String.valueOf(sql.getMessage());
            }
        }
        return String.valueOf(e.getMessage());
    }

    private static int runRelay(CommandLine cl, RelaySettings.Values settings, PrintStream err) {
        // The hook is in place before the relay claims its first lease: a SIGTERM that arrives while it
        // starts stops the process at once while the start holds nothing (its checks may wait for
        // PostgreSQL or Kafka for up to startup-timeout), waits for the migrations to end, and waits for a
        // relay being started to finish starting and then hands its leases back, rather than letting the
        // JVM exit with the shards still leased until they expire.
        Logger log = LoggerFactory.getLogger(Main.class);
        AtomicReference<RelayProcess> running = new AtomicReference<>();
        AtomicInteger startCode = new AtomicInteger(EXIT_FAILURE);
        StartStop stop = new StartStop();
        Duration startWait = settings.duration(RelaySettings.SHUTDOWN_TIMEOUT).plus(RelayProcess.CLOSE_MARGIN);
        Runtime.getRuntime()
                .addShutdownHook(new Thread(
                        () -> {
                            StartStop.Phase phase = stop.request();
                            if (phase == StartStop.Phase.HOLDING_NOTHING) {
                                log.info("outbox-relay stopped during its start; it had claimed nothing");
                                halt(EXIT_OK);
                            }
                            boolean clean;
                            try {
                                if (!awaitStart(stop, startWait, log)) {
                                    log.error(
                                            "outbox-relay: its start did not end within {} of the stop;"
                                                    + " exiting anyway: leases it may hold expire after lease-duration",
                                            Durations.format(startWait));
                                    halt(EXIT_FAILURE);
                                }
                                RelayProcess started = running.get();
                                if (started == null) {
                                    if (phase == StartStop.Phase.ENDED) {
                                        // the start had failed before: the exit that runs this hook (main's
                                        // System.exit with the start's code, or an embedding JVM's own) stands
                                        return;
                                    }
                                    // stopped, or failed, while this hook waited for it: main's System.exit
                                    // now waits for this hook, so the start's code is given here
                                    halt(startCode.get());
                                }
                                clean = started.shutdown();
                            } catch (InterruptedException e) {
                                Thread.currentThread().interrupt();
                                clean = false;
                            }
                            // Without this the JVM reports 143 for SIGTERM; a graceful stop is a success.
                            halt(clean ? EXIT_OK : EXIT_FAILURE);
                        },
                        "outbox-relay-shutdown"));
        RelayProcess process = null;
        try {
            process = RelayProcess.start(settings, cl.migrate(), stop);
            running.set(process);
            startCode.set(EXIT_OK);
        } catch (StartStop.Stopped e) {
            log.info("outbox-relay stopped after its migrations, before it started (SIGTERM during the start)");
            startCode.set(EXIT_OK);
        } catch (RuntimeException e) {
            // reported here, before the hook may halt the JVM with this exit code
            startCode.set(report(e, err));
        } finally {
            stop.enter(StartStop.Phase.ENDED);
        }
        if (process == null) {
            return startCode.get();
        }
        log.info(
                "outbox-relay[{}] running; SIGTERM stops it gracefully",
                process.relay().instanceId());
        CountDownLatch forever = new CountDownLatch(1);
        try {
            forever.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return process.shutdown() ? EXIT_OK : EXIT_FAILURE;
    }

    /**
     * Waits for the start to end: for as long as it runs the migrations, and for {@code limit} of anything
     * else (the relay's own start, which the process waits for only to hand its leases back).
     *
     * @return whether the start ended
     */
    private static boolean awaitStart(StartStop stop, Duration limit, Logger log) throws InterruptedException {
        long waited = 0;
        boolean toldMigrating = false;
        while (!stop.awaitEnded(100)) {
            if (stop.phase() == StartStop.Phase.MIGRATING) {
                if (!toldMigrating) {
                    toldMigrating = true;
                    log.info("outbox-relay stopping: the migrations run to their end first (kill -9 stops them;"
                            + " PostgreSQL rolls back the one in progress, a concurrent index build leaves an"
                            + " invalid index that the next --migrate builds again)");
                }
                continue;
            }
            waited += 100;
            if (waited >= limit.toMillis()) {
                return false;
            }
        }
        return true;
    }

    /** Halts the JVM with {@code code}: the shutdown hook's end, after its output is flushed. */
    private static void halt(int code) {
        System.out.flush();
        System.err.flush();
        Runtime.getRuntime().halt(code);
    }

    /** @return the exit code of {@code e}, reported on standard error (and the log, for an unexpected one) */
    private static int report(RuntimeException e, PrintStream err) {
        if (e instanceof CliException cli) {
            err.println(cli.getMessage());
            return cli.exitCode();
        }
        err.println("outbox-relay failed: " + RelayProcess.oneLine(String.valueOf(e)));
        LoggerFactory.getLogger(Main.class).error("outbox-relay failed", e);
        return EXIT_FAILURE;
    }

    /** @return the {@code --help} text */
    static String usage() {
        return """
        Usage: java -jar outbox-relay-all.jar [command] [options] [settings]

        Publishes the transactional outbox's rows to Kafka, at least once and in commit order per key.

        Commands:
          run                                   run the relay until SIGTERM (the default)
          status [--json]                       backlog and oldest age per shard, leases, live relays,
                                                parked count, what holds PostgreSQL's xmin horizon
          parked list [--limit N] [--json]      parked messages with their last error (default 50)
          parked requeue (--all | --id N ...)   make parked messages publishable again (fix the cause first)
          parked purge (--all | --id N ...) --yes
                                                delete parked messages for good; without --yes only shows them;
                                                --all --yes needs --expect=COUNT:FINGERPRINT, as the dry run
                                                printed it (which messages it showed)
          doctor [--json] [doctor options]      checks the deployment for the failure modes of idempotency:
                                                unique constraints, key and processed-id expiry, stored
                                                responses, keys stuck in flight, processed-id retention
                                                against the topics' retention (needs bootstrap-servers),
                                                parked and long-unpublished outbox rows, outbox index
                                                size, the outbox migrations' objects in place,
                                                durable commits in PostgreSQL, and topics
                                                replicated so that an acknowledged record survives a
                                                broker (needs bootstrap-servers)

        Doctor options (durations also in days, e.g. 7d):
          --consumer NAME=TOPIC[,TOPIC...]      the topics a consumer reads (repeatable); without it, the
                                                topics of the consumer group named like the consumer
          --consumer-retention NAME=DURATION    a consumer's processed-id retention (repeatable)
          --topic TOPIC[,TOPIC...]              topics the relay publishes to, for their replication
                                                (repeatable; the consumers' topics are checked too)
          --processed-retention DURATION        the retention of the other consumers (default 7d)
          --key-ttl DURATION                    the idempotency keys' ttl (default 24h)
          --lock-timeout DURATION               the key store's lock timeout (default 2s)
          --purge-grace DURATION                how late a purge may be (default 2h)
          --max-unpublished-age DURATION        oldest acceptable unpublished row (default 5m)

        Options:
          --config FILE    a properties file with settings (also OUTBOX_RELAY_CONFIG)
          --migrate        run: apply the outbox migrations before starting
          --help           this text

        Settings: flag > environment variable > properties file > default. Durations take units:
        500ms, 30s, 5m, 1h, 7d, 1m30s. The admin commands need only the PostgreSQL settings.
        """ + SettingsText.helpText() + """

        Exit codes: 0 ok (also after SIGTERM); 1 unexpected failure or slow shutdown; 2 bad, unknown,
        missing or conflicting setting; 3 PostgreSQL, the outbox schema or Kafka not reachable at start;
        4 doctor: a check failed.
        """;
    }
}
