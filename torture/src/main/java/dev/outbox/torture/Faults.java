package dev.outbox.torture;

import dev.outbox.testkit.PrivatePostgres;
import dev.outbox.testkit.TestKafka;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Consumer;

/**
 * The seeded fault schedule and its execution. The schedule (which fault, when, against whom) is
 * drawn from the seed before the run starts; faults run on four lanes (SIGKILL, SIGSTOP, Kafka,
 * PostgreSQL) so that a broker restart, or a pause waiting for a process it may freeze, does not
 * hold up a SIGKILL. A paused process is resumed after its pause, and at least one relay and one
 * consumer are always running unpaused.
 */
final class Faults implements AutoCloseable {
    /**
     * A pause lasts this much longer than the lease or session it must outlast: more than the other
     * relay's lease loop (a third of the lease), so that it takes the paused relay's shards over
     * before the paused one wakes.
     */
    static final Duration PAUSE_MARGIN = Torture.LEASE.dividedBy(2);
    /** Least time a restarted broker or database stays up before the next restart of it. */
    static final Duration UP_BETWEEN_RESTARTS = Duration.ofSeconds(5);

    record Planned(long atMillis, Fault fault, double roll) {}

    private final Options o;
    private final TestKafka kafka;
    private final PrivatePostgres pg;
    private final String jdbcUrl;
    private final List<Child> children;
    private final Ledger ledger;
    private final Consumer<String> log;
    private final Set<Child> paused = ConcurrentHashMap.newKeySet();
    private final Map<Child, Long> startedAt = new ConcurrentHashMap<>();
    private final ExecutorService killLane =
            Executors.newSingleThreadExecutor(r -> new Thread(r, "torture-fault-kill"));
    private final ExecutorService pauseLane =
            Executors.newSingleThreadExecutor(r -> new Thread(r, "torture-fault-pause"));
    private final ExecutorService kafkaLane =
            Executors.newSingleThreadExecutor(r -> new Thread(r, "torture-fault-kafka"));
    private final ExecutorService pgLane =
            Executors.newSingleThreadExecutor(r -> new Thread(r, "torture-fault-postgres"));
    private final ScheduledExecutorService resumer = Executors.newSingleThreadScheduledExecutor();
    private volatile boolean brokerDown;
    /** When the broker and the database last came up again (0: not restarted yet). */
    private volatile long brokerUpAt;

    private volatile long pgUpAt;

    Faults(
            Options o,
            TestKafka kafka,
            PrivatePostgres pg,
            String jdbcUrl,
            List<Child> children,
            Ledger ledger,
            Consumer<String> log) {
        this.o = o;
        this.kafka = kafka;
        this.pg = pg;
        this.jdbcUrl = jdbcUrl;
        this.children = children;
        this.ledger = ledger;
        this.log = log;
        children.forEach(c -> startedAt.put(c, System.nanoTime()));
    }

    /**
     * Draws the schedule: the run's duration (from 5 % to 90 % of it) is cut into as many slots as
     * there are faults of a kind, and each fault falls at a random moment of its slot, so faults of one
     * kind neither bunch up nor follow a fixed beat; a second random number picks the target.
     */
    static List<Planned> plan(Options o) {
        Random random = new Random(o.seed());
        List<Planned> plan = new ArrayList<>();
        double span = o.duration().toMillis() * 0.85;
        double offset = o.duration().toMillis() * 0.05;
        for (Fault f : Fault.scheduled()) {
            int n = o.faults().getOrDefault(f, 0);
            for (int i = 0; i < n; i++) {
                plan.add(new Planned((long) (offset + span * (i + random.nextDouble()) / n), f, random.nextDouble()));
            }
        }
        plan.sort(Comparator.comparingLong(Planned::atMillis));
        return plan;
    }

    /** Runs the schedule, then waits for every lane to finish its faults. */
    void runSchedule() throws InterruptedException {
        long start = System.nanoTime();
        for (Planned p : plan(o)) {
            long wait = start + TimeUnit.MILLISECONDS.toNanos(p.atMillis()) - System.nanoTime();
            if (wait > 0) {
                LockSupport.parkNanos(wait);
            }
            ExecutorService lane = switch (p.fault()) {
                case SIGKILL -> killLane;
                case SIGSTOP -> pauseLane;
                case BROKER_RESTART -> kafkaLane;
                default -> pgLane;
            };
            lane.submit(() -> {
                try {
                    inject(p);
                } catch (Exception e) {
                    log.accept("fault " + p.fault() + " failed: " + e);
                }
            });
        }
        for (ExecutorService lane : List.of(killLane, pauseLane, kafkaLane, pgLane)) {
            lane.shutdown();
            lane.awaitTermination(30, TimeUnit.MINUTES);
        }
    }

    private void inject(Planned p) throws Exception {
        switch (p.fault()) {
            case SIGKILL -> {
                Child c = pick(p.roll(), false);
                c.killAndRestart();
                startedAt.put(c, System.nanoTime());
                ledger.add("SIGKILL " + c.role().name().toLowerCase(Locale.ROOT) + " (restarted)", 1);
                log.accept("SIGKILL " + c.name() + ", restarted");
            }
            case SIGSTOP -> {
                Child c = pick(p.roll(), true);
                Duration pause = (c.role() == Child.Role.RELAY ? Torture.LEASE : TortureConsumer.SESSION_TIMEOUT)
                        .plus(PAUSE_MARGIN);
                c.pause();
                ledger.add(
                        "SIGSTOP " + c.role().name().toLowerCase(Locale.ROOT) + " for " + pause.toSeconds()
                                + " s (past its " + (c.role() == Child.Role.RELAY ? "lease" : "session timeout")
                                + "), SIGCONT",
                        1);
                log.accept("SIGSTOP " + c.name() + " for " + pause.toSeconds() + " s");
                resumer.schedule(
                        () -> {
                            try {
                                c.resume();
                            } catch (Exception e) {
                                log.accept("SIGCONT " + c.name() + " failed: " + e);
                            } finally {
                                paused.remove(c);
                            }
                        },
                        pause.toMillis(),
                        TimeUnit.MILLISECONDS);
            }
            case PG_TERMINATE -> {
                // relays, consumers or both, by the draw
                List<String> apps = p.roll() < 1 / 3.0
                        ? List.of("outbox-relay")
                        : p.roll() < 2 / 3.0
                                ? List.of("torture-consumer")
                                : List.of("outbox-relay", "torture-consumer");
                int ended = terminate(apps);
                ledger.add("pg_terminate_backend of " + String.join(" and ", apps) + " connections", 1);
                log.accept("pg_terminate_backend: " + ended + " connections of " + apps);
            }
            case BROKER_RESTART -> {
                // the clients need the broker up for a while between two restarts, or a slow restart on a
                // loaded machine turns the schedule into one long outage
                awaitUpSince(brokerUpAt);
                long t0 = System.nanoTime();
                brokerDown = true;
                kafka.stopBroker();
                long stopped = System.nanoTime();
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(500 + (long) (p.roll() * 1500)));
                long t1 = System.nanoTime();
                kafka.startBroker();
                brokerDown = false;
                ledger.add("Kafka broker stopped and started", 1);
                log.accept("Kafka broker restarted (stop " + millis(stopped - t0) + " ms, down "
                        + millis(System.nanoTime() - stopped) + " ms of which start " + millis(System.nanoTime() - t1)
                        + " ms)");
                brokerUpAt = System.nanoTime();
            }
            case PG_RESTART -> {
                awaitUpSince(pgUpAt);
                long t0 = System.nanoTime();
                pg.restart();
                ledger.add("PostgreSQL stopped (pg_ctl stop -m fast) and started", 1);
                log.accept("PostgreSQL restarted (down " + millis(System.nanoTime() - t0) + " ms)");
                pgUpAt = System.nanoTime();
            }
            case DUPLICATE -> throw new IllegalStateException("duplicates come from the duplicator, not the schedule");
        }
    }

    /**
     * Picks a target: the drawn one if it may be hit, else the next that may. A target may be hit
     * when it is not paused, has said it runs and has run a few seconds since it started (a JVM still
     * starting proves nothing); a pause may not leave a role without a running process. The pick
     * claims its target before the SIGKILL and SIGSTOP lanes look again: a target to pause counts as
     * paused, a target to kill as just started, so that the other lane leaves it alone.
     */
    private Child pick(double roll, boolean pause) {
        while (true) {
            synchronized (this) {
                int n = children.size();
                int first = (int) (roll * n);
                for (int i = 0; i < n; i++) {
                    Child c = children.get((first + i) % n);
                    boolean warm = c.ready()
                            && System.nanoTime() - startedAt.getOrDefault(c, 0L) > TimeUnit.SECONDS.toNanos(5);
                    long runningOfRole = children.stream()
                            .filter(x -> x.role() == c.role() && !paused.contains(x))
                            .count();
                    if (!paused.contains(c) && warm && (!pause || runningOfRole >= 2)) {
                        if (pause) {
                            paused.add(c);
                        } else {
                            startedAt.put(c, System.nanoTime());
                        }
                        return c;
                    }
                }
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(200));
        }
    }

    private int terminate(List<String> applicationNames) throws Exception {
        try (Connection c = Torture.adminConnection(jdbcUrl);
                PreparedStatement st = c.prepareStatement(
                        "select count(*) filter (where pg_terminate_backend(pid)) from pg_stat_activity"
                                + " where datname = ? and application_name = any (?) and pid <> pg_backend_pid()")) {
            st.setString(1, Torture.DATABASE);
            st.setArray(2, c.createArrayOf("text", applicationNames.toArray()));
            try (ResultSet rs = st.executeQuery()) {
                rs.next();
                return rs.getInt(1);
            }
        }
    }

    /**
     * Waits until a broker or database that came up again at {@code upAt} has been up for {@link
     * #UP_BETWEEN_RESTARTS}. Waiting before a restart rather than after it lets the schedule end with
     * its last restart.
     */
    private static void awaitUpSince(long upAt) {
        if (upAt != 0) {
            long wait = upAt + UP_BETWEEN_RESTARTS.toNanos() - System.nanoTime();
            if (wait > 0) {
                LockSupport.parkNanos(wait);
            }
        }
    }

    private static long millis(long nanos) {
        return TimeUnit.NANOSECONDS.toMillis(nanos);
    }

    /** Starts again a process that exited by itself (a relay that gave up while PostgreSQL was down, say). */
    void restartExited() {
        for (Child c : children) {
            if (paused.contains(c)) {
                continue;
            }
            try {
                if (c.restartIfDead()) {
                    startedAt.put(c, System.nanoTime());
                    ledger.add(c.role().name().toLowerCase(Locale.ROOT) + " exited by itself (started again)", 1);
                    log.accept(c.name() + " had exited by itself; started again (see its log)");
                }
            } catch (Exception e) {
                log.accept("could not restart " + c.name() + ": " + e);
            }
        }
    }

    /** After the schedule: every paused process resumed, the broker up. */
    void healAll() throws Exception {
        resumer.shutdown();
        resumer.awaitTermination(1, TimeUnit.MINUTES);
        for (Child c : children) {
            c.resume();
        }
        paused.clear();
        if (brokerDown) {
            kafka.startBroker();
        }
    }

    @Override
    public void close() {
        killLane.shutdownNow();
        pauseLane.shutdownNow();
        kafkaLane.shutdownNow();
        pgLane.shutdownNow();
        resumer.shutdownNow();
    }
}
