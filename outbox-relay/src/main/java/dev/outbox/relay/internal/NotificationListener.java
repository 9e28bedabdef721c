package dev.outbox.relay.internal;

import dev.outbox.core.internal.Durations;
import dev.outbox.core.retry.Backoff;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;

/**
 * The opt-in LISTEN wake-up: holds one session-level connection of its own that LISTENs on the
 * outbox channel and wakes the shards named in each notification ({@code *} = all). Producers built
 * with {@code notifyInTransaction(true)} notify in the producing transaction, so PostgreSQL delivers
 * at commit and drops the notification on rollback. The {@link ShardProbe} runs as well, so a lost
 * notification costs at most one probe interval; after a reconnect every shard is woken, since
 * notifications sent while the connection was down are gone.
 */
final class NotificationListener {
    private static final int WAIT_MS = 500;
    private static final long CHECK_NANOS = TimeUnit.SECONDS.toNanos(10);
    private static final Backoff RECONNECT = Backoff.of(Duration.ofMillis(200), Duration.ofSeconds(10));

    private final RelayEngine engine;
    private final String channel;
    private final Thread thread;
    private volatile boolean stopped;
    private volatile Connection connection;

    NotificationListener(RelayEngine engine, String channel) {
        this.engine = engine;
        this.channel = channel;
        this.thread = Threads.single(engine.config().instanceId(), "listen").newThread(this::run);
    }

    void start() {
        thread.start();
    }

    boolean isAlive() {
        return thread.isAlive();
    }

    void stop() {
        stopped = true;
        thread.interrupt();
        try {
            thread.join(2_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        Connection c = connection;
        if (c != null) {
            try {
                c.close();
            } catch (SQLException ignored) {
                // closing a connection we are abandoning
            }
        }
    }

    private void run() {
        int attempt = 0;
        while (!stopped) {
            // a connection of its own, never the workers' pool: LISTEN needs a session (not a
            // transaction-pooling PgBouncer), and closing it ends the session with its LISTEN state
            try (Connection c = engine.config().listenDataSource().getConnection()) {
                connection = c;
                if (!c.getAutoCommit()) {
                    c.setAutoCommit(true);
                }
                try (Statement st = c.createStatement()) {
                    st.execute("listen \"" + channel + "\"");
                }
                PGConnection pg = c.unwrap(PGConnection.class);
                if (attempt > 0) {
                    engine.log().info("listening on {} again", channel);
                }
                attempt = 0;
                engine.wakeAll();
                long checked = engine.time().nanoTime();
                while (!stopped) {
                    PGNotification[] notes = pg.getNotifications(WAIT_MS);
                    if (notes != null) {
                        for (PGNotification n : notes) {
                            dispatch(n.getParameter());
                        }
                    }
                    if (engine.time().nanoTime() - checked > CHECK_NANOS) {
                        // a connection that died without a reset only shows when something is sent on it
                        try (Statement st = c.createStatement()) {
                            st.execute("select 1");
                        }
                        checked = engine.time().nanoTime();
                        engine.databaseAnswered();
                    }
                    if (Thread.interrupted() && stopped) {
                        return;
                    }
                }
            } catch (SQLException e) {
                if (stopped) {
                    return;
                }
                engine.metrics().database.increment();
                Duration delay = RECONNECT.delay(Math.min(attempt++, 20));
                engine.log()
                        .retry(
                                "LISTEN connection failed (SQLState {}): {}; reconnecting in {} (shards are polled"
                                        + " meanwhile)",
                                e.getSQLState(),
                                e.getMessage(),
                                Durations.format(delay));
                try {
                    Thread.sleep(delay.toMillis());
                } catch (InterruptedException ie) {
                    if (stopped) {
                        return;
                    }
                }
            } catch (RuntimeException e) {
                if (stopped) {
                    return;
                }
                engine.log().error("LISTEN loop failed: {}", e.toString(), e);
                try {
                    Thread.sleep(RECONNECT.cap().toMillis());
                } catch (InterruptedException ie) {
                    if (stopped) {
                        return;
                    }
                }
            } finally {
                connection = null;
            }
        }
    }

    private void dispatch(String payload) {
        if (payload == null || payload.isEmpty() || payload.equals("*")) {
            engine.wakeAll();
            return;
        }
        int start = 0;
        while (start < payload.length()) {
            int end = payload.indexOf(',', start);
            if (end < 0) {
                end = payload.length();
            }
            try {
                engine.wake(Integer.parseInt(payload, start, end, 10));
            } catch (NumberFormatException e) {
                engine.wakeAll();
                return;
            }
            start = end + 1;
        }
    }
}
