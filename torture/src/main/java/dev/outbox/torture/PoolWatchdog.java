package dev.outbox.torture;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import java.sql.Connection;
import java.sql.DriverManager;
import java.time.Duration;
import java.util.Map;
import java.util.Properties;

/**
 * Keeps a consumer process from sitting alive but idle on a connection pool that never refills.
 *
 * <p>HikariCP opens connections on one "connection adder" thread per pool. Its {@code
 * connectionTimeout} bounds how long a caller waits, not how long a connection attempt takes:
 * Hikari passes it to the driver as {@code DriverManager.setLoginTimeout}, which pgjdbc 42.7 ignores
 * (its own {@code loginTimeout} property defaults to 0 and wins), and pgjdbc's {@code socketTimeout}
 * defaults to 0. A connection attempt whose server end accepts the TCP connection and then never
 * answers the startup handshake blocks that thread for good, and the pool stays at {@code total=0}
 * while the database serves every other process. {@link #boundConnectionAttempts} sets the driver's
 * own timeouts; {@link #start} is the backstop: when the pool has held no connection for a while
 * although a direct connection succeeds, it prints every thread's stack (the adder's says where it
 * hangs) and exits with {@link #EXIT_CODE}, so the run starts a new process, as an orchestrator
 * whose readiness check failed would.
 */
final class PoolWatchdog {
    /** The exit code of a process whose pool stayed empty. */
    static final int EXIT_CODE = 3;
    /** How long an empty pool next to a reachable database is tolerated. */
    static final Duration STUCK_AFTER = Duration.ofSeconds(60);

    private static final int CONNECT_TIMEOUT_SECONDS = 5;
    private static final int LOGIN_TIMEOUT_SECONDS = 10;
    /** Longer than any statement of the consumer, lock waits behind a paused process included. */
    private static final int SOCKET_TIMEOUT_SECONDS = 60;

    private PoolWatchdog() {}

    /**
     * Bounds every connection attempt of the pool by pgjdbc's own settings: TCP connect, the whole
     * login, and each read.
     *
     * @param config the pool's configuration, changed in place
     */
    static void boundConnectionAttempts(HikariConfig config) {
        config.addDataSourceProperty("connectTimeout", String.valueOf(CONNECT_TIMEOUT_SECONDS));
        config.addDataSourceProperty("loginTimeout", String.valueOf(LOGIN_TIMEOUT_SECONDS));
        config.addDataSourceProperty("socketTimeout", String.valueOf(SOCKET_TIMEOUT_SECONDS));
        config.addDataSourceProperty("tcpKeepAlive", "true");
    }

    /**
     * Starts the daemon thread that watches {@code pool}.
     *
     * @param pool the pool
     * @param jdbcUrl where a direct connection is tried
     * @param stuckAfter how long the pool may hold no connection while a direct one succeeds
     */
    static void start(HikariDataSource pool, String jdbcUrl, Duration stuckAfter) {
        Thread t = new Thread(() -> watch(pool, jdbcUrl, stuckAfter), "torture-pool-watchdog");
        t.setDaemon(true);
        t.start();
    }

    private static void watch(HikariDataSource pool, String jdbcUrl, Duration stuckAfter) {
        long emptySince = 0;
        while (!pool.isClosed()) {
            try {
                Thread.sleep(5_000);
            } catch (InterruptedException e) {
                return;
            }
            var mx = pool.getHikariPoolMXBean();
            if (mx == null || mx.getTotalConnections() > 0 || !reachable(jdbcUrl)) {
                emptySince = 0;
                continue;
            }
            long now = System.nanoTime();
            if (emptySince == 0) {
                emptySince = now;
            } else if (now - emptySince > stuckAfter.toNanos()) {
                System.out.println("torture consumer: the pool has held no connection for " + stuckAfter.toSeconds()
                        + " s while the database accepts new ones; thread dump follows, then exit " + EXIT_CODE);
                dumpThreads();
                System.out.flush();
                Runtime.getRuntime().halt(EXIT_CODE);
            }
        }
    }

    private static boolean reachable(String jdbcUrl) {
        Properties p = new Properties();
        p.setProperty("user", "postgres");
        p.setProperty("ApplicationName", "torture-watchdog");
        p.setProperty("connectTimeout", String.valueOf(CONNECT_TIMEOUT_SECONDS));
        p.setProperty("loginTimeout", String.valueOf(LOGIN_TIMEOUT_SECONDS));
        p.setProperty("socketTimeout", String.valueOf(LOGIN_TIMEOUT_SECONDS));
        try (Connection c = DriverManager.getConnection(jdbcUrl, p)) {
            return c.isValid(LOGIN_TIMEOUT_SECONDS);
        } catch (Exception e) {
            return false;
        }
    }

    private static void dumpThreads() {
        for (Map.Entry<Thread, StackTraceElement[]> e :
                Thread.getAllStackTraces().entrySet()) {
            System.out.println("\"" + e.getKey().getName() + "\" " + e.getKey().getState());
            for (StackTraceElement f : e.getValue()) {
                System.out.println("    at " + f);
            }
        }
    }
}
