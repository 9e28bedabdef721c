package dev.outbox.bench.http;

import ch.qos.logback.classic.Level;
import dev.outbox.core.retry.RetryBudget;
import dev.outbox.http.client.CallResult;
import dev.outbox.http.client.IdempotentHttpClient;
import io.github.resilience4j.circuitbreaker.CircuitBreakerConfig;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.locks.LockSupport;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.util.thread.QueuedThreadPool;
import org.slf4j.LoggerFactory;

/**
 * A retry storm, measured: many clients call a real Jetty server that fails every request (503)
 * for a while and then recovers, with a finite capacity beyond which it sheds load (503). The same
 * load runs with {@link IdempotentHttpClient} configured without any retry bound (unlimited
 * budget, no breaker), with the default retry budget, and with budget and circuit breaker; the
 * report gives request amplification (server requests per logical operation) and recovery time
 * (from the server's recovery to the first second in which at least 95 % of the requests that
 * reach it succeed and the operations started in it succeed as often as before the outage).
 *
 * <p>Run (after {@code ./mvnw -q install -DskipTests}):
 *
 * <pre>
 * ./mvnw -q -pl benchmarks exec:java -Dexec.mainClass=dev.outbox.bench.http.RetryStormBenchmark
 * </pre>
 *
 * Arguments (all optional, {@code key=value}): {@code rate=200} operations per second, {@code
 * capacity=300} requests per second the server can serve, {@code healthy=5} seconds before the
 * outage, {@code outage=5} seconds of 503, {@code after=15} seconds after it, {@code
 * maxAttempts=5}, {@code breakerWait=2} seconds a breaker stays open.
 */
public final class RetryStormBenchmark {

    private record Settings(
            int rate, int capacity, int healthy, int outage, int after, int maxAttempts, int breakerWait) {
        int seconds() {
            return healthy + outage + after;
        }

        static Settings parse(String[] args) {
            int rate = 200, capacity = 300, healthy = 5, outage = 5, after = 15, maxAttempts = 5, breakerWait = 2;
            for (String arg : args) {
                String[] kv = arg.split("=", 2);
                if (kv.length != 2) {
                    throw new IllegalArgumentException("argument '" + arg + "' is not key=value, e.g. rate=200");
                }
                int v;
                try {
                    v = Integer.parseInt(kv[1]);
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException(
                            "argument " + kv[0] + " must be an integer, got '" + kv[1] + "'");
                }
                if (v < 1) {
                    throw new IllegalArgumentException("argument " + kv[0] + " must be at least 1, got " + v);
                }
                switch (kv[0]) {
                    case "rate" -> rate = v;
                    case "capacity" -> capacity = v;
                    case "healthy" -> healthy = v;
                    case "outage" -> outage = v;
                    case "after" -> after = v;
                    case "maxAttempts" -> maxAttempts = v;
                    case "breakerWait" -> breakerWait = v;
                    default ->
                        throw new IllegalArgumentException("unknown argument '" + kv[0]
                                + "'; known: rate, capacity, healthy, outage, after, maxAttempts, breakerWait");
                }
            }
            return new Settings(rate, capacity, healthy, outage, after, maxAttempts, breakerWait);
        }
    }

    /** Per-second counters of one run, indexed by whole seconds since the load started. */
    private static final class Timeline {
        final AtomicLongArray requests;
        final AtomicLongArray served;
        final AtomicLongArray started;
        final AtomicLongArray succeeded;

        Timeline(int seconds) {
            requests = new AtomicLongArray(seconds + 120);
            served = new AtomicLongArray(seconds + 120);
            started = new AtomicLongArray(seconds + 120);
            succeeded = new AtomicLongArray(seconds + 120);
        }
    }

    /**
     * The dependency: 503 for everything during the outage, otherwise serves up to {@code capacity}
     * requests per second (a token bucket with 100 ms of burst) and sheds the rest with 503.
     */
    private static final class FlakyServlet extends HttpServlet {
        private final Settings settings;
        private volatile long startNanos;
        private volatile Timeline timeline;
        private final AtomicLong tokens = new AtomicLong();
        private final AtomicLong lastRefill = new AtomicLong();

        FlakyServlet(Settings settings) {
            this.settings = settings;
        }

        void reset(long startNanos, Timeline timeline) {
            this.startNanos = startNanos;
            this.timeline = timeline;
            tokens.set(settings.capacity() / 10);
            lastRefill.set(startNanos);
        }

        @Override
        protected void doPost(HttpServletRequest req, HttpServletResponse resp) throws IOException {
            req.getInputStream().readAllBytes();
            long now = System.nanoTime();
            long elapsed = now - startNanos;
            int second = (int) Math.max(0, elapsed / 1_000_000_000L);
            timeline.requests.incrementAndGet(second);
            boolean down = elapsed >= settings.healthy() * 1_000_000_000L
                    && elapsed < (long) (settings.healthy() + settings.outage()) * 1_000_000_000L;
            if (down || !takeToken(now)) {
                resp.setStatus(503);
                return;
            }
            timeline.served.incrementAndGet(second);
            resp.setStatus(201);
            resp.setContentType("application/json");
            resp.getWriter().write("{\"ok\":true}");
        }

        private boolean takeToken(long now) {
            long nanosPerToken = 1_000_000_000L / settings.capacity();
            long last = lastRefill.get();
            long add = (now - last) / nanosPerToken;
            if (add > 0 && lastRefill.compareAndSet(last, last + add * nanosPerToken)) {
                long max = Math.max(1, settings.capacity() / 10);
                tokens.getAndUpdate(t -> Math.min(max, t + add));
            }
            while (true) {
                long t = tokens.get();
                if (t <= 0) {
                    return false;
                }
                if (tokens.compareAndSet(t, t - 1)) {
                    return true;
                }
            }
        }
    }

    private record Scenario(String name, RetryBudget budget, boolean breaker) {}

    private record Outcome(
            Scenario scenario,
            long operations,
            long requests,
            long succeeded,
            long failed,
            double recoverySeconds,
            double baselineSuccess,
            Timeline timeline,
            int seconds,
            long p50Millis,
            long p99Millis) {}

    public static void main(String[] args) throws Exception {
        // without a logging configuration logback logs everything at DEBUG, including a line per retry
        // (thousands per second here), which would swamp the report
        ClassLoader loader = RetryStormBenchmark.class.getClassLoader();
        if (System.getProperty("logback.configurationFile") == null
                && loader.getResource("logback.xml") == null
                && loader.getResource("logback-test.xml") == null
                && LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME)
                        instanceof ch.qos.logback.classic.Logger root) {
            root.setLevel(Level.INFO);
        }
        Settings settings = Settings.parse(args);
        FlakyServlet servlet = new FlakyServlet(settings);
        QueuedThreadPool threads = new QueuedThreadPool(400);
        Server server = new Server(threads);
        ServerConnector connector = new ServerConnector(server);
        connector.setHost("127.0.0.1");
        connector.setPort(0);
        connector.setAcceptQueueSize(1024);
        server.addConnector(connector);
        ServletContextHandler context = new ServletContextHandler();
        context.addServlet(servlet, "/*");
        server.setHandler(context);
        server.start();
        URI uri = URI.create("http://127.0.0.1:" + connector.getLocalPort() + "/payments");
        try {
            List<Scenario> scenarios = List.of(
                    new Scenario("no budget, no breaker", RetryBudget.unlimited(), false),
                    new Scenario("budget 10% + 10/s", RetryBudget.of(0.1, 10, Duration.ofSeconds(10)), false),
                    new Scenario("budget + breaker", RetryBudget.of(0.1, 10, Duration.ofSeconds(10)), true));
            List<Outcome> outcomes = new ArrayList<>();
            run(
                    servlet,
                    uri,
                    settings,
                    new Scenario("warm-up", RetryBudget.of(0.1, 10, Duration.ofSeconds(10)), false),
                    3);
            for (Scenario s : scenarios) {
                outcomes.add(run(servlet, uri, settings, s, settings.seconds()));
            }
            report(settings, outcomes);
        } finally {
            server.stop();
        }
    }

    private static Outcome run(FlakyServlet servlet, URI uri, Settings settings, Scenario scenario, int seconds)
            throws Exception {
        IdempotentHttpClient.Builder builder = IdempotentHttpClient.builder()
                .httpClient(HttpClient.newBuilder()
                        .version(HttpClient.Version.HTTP_1_1)
                        .connectTimeout(Duration.ofSeconds(5))
                        .build())
                .idempotentTargets(uri.resolve("/").toString())
                .retryBudget(scenario.budget())
                .maxAttempts(settings.maxAttempts())
                .attemptTimeout(Duration.ofSeconds(5))
                .name(scenario.name());
        if (scenario.breaker()) {
            builder.circuitBreakerConfig(CircuitBreakerConfig.custom()
                    .slidingWindowType(CircuitBreakerConfig.SlidingWindowType.COUNT_BASED)
                    .slidingWindowSize(20)
                    .minimumNumberOfCalls(5)
                    .failureRateThreshold(50)
                    .waitDurationInOpenState(Duration.ofSeconds(settings.breakerWait()))
                    .permittedNumberOfCallsInHalfOpenState(3)
                    .build());
        } else {
            builder.noCircuitBreaker();
        }
        IdempotentHttpClient client = builder.build();
        Timeline timeline = new Timeline(seconds);
        long start = System.nanoTime();
        servlet.reset(start, timeline);
        AtomicLong ok = new AtomicLong();
        AtomicLong failed = new AtomicLong();
        long operations = (long) settings.rate() * seconds;
        long interval = 1_000_000_000L / settings.rate();
        byte[] body = "{\"amount_cents\":1250,\"currency\":\"EUR\"}".getBytes(StandardCharsets.UTF_8);
        AtomicLongArray latency = new AtomicLongArray((int) operations);
        long recoveryNanos = (long) (settings.healthy() + settings.outage()) * 1_000_000_000L;
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = 0; i < operations; i++) {
                int op = i;
                long due = start + i * interval;
                long wait = due - System.nanoTime();
                if (wait > 0) {
                    LockSupport.parkNanos(wait);
                }
                int second = (int) ((System.nanoTime() - start) / 1_000_000_000L);
                timeline.started.incrementAndGet(second);
                long begun = System.nanoTime();
                pool.execute(() -> {
                    HttpRequest request = HttpRequest.newBuilder(uri)
                            .header("Content-Type", "application/json")
                            .POST(HttpRequest.BodyPublishers.ofByteArray(body))
                            .build();
                    try {
                        CallResult<Void> r = client.send(request, HttpResponse.BodyHandlers.discarding());
                        if (r.status() == 201) {
                            latency.set(op, System.nanoTime() - begun);
                            ok.incrementAndGet();
                            timeline.succeeded.incrementAndGet(second);
                        } else {
                            failed.incrementAndGet();
                        }
                    } catch (IOException e) {
                        failed.incrementAndGet();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        failed.incrementAndGet();
                    }
                });
            }
            pool.shutdown();
            if (!pool.awaitTermination(5, TimeUnit.MINUTES)) {
                throw new IllegalStateException("operations still running 5 minutes after the load stopped");
            }
        }
        long requests = 0;
        for (int s = 0; s < timeline.requests.length(); s++) {
            requests += timeline.requests.get(s);
        }
        double baseline = ratio(timeline.succeeded, timeline.started, 1, settings.healthy());
        double recovery = Double.NaN;
        int recoveredAt = settings.healthy() + settings.outage();
        for (int s = recoveredAt; s < seconds; s++) {
            double served = ratio(timeline.served, timeline.requests, s, s + 1);
            double opSuccess = ratio(timeline.succeeded, timeline.started, s, s + 1);
            if (served >= 0.95 && opSuccess >= 0.95 * baseline) {
                recovery = s + 1 - recoveredAt;
                break;
            }
        }
        // latency of the operations that arrived after the server recovered, failed ones excluded
        List<Long> after = new ArrayList<>();
        for (int i = 0; i < operations; i++) {
            if (i * interval >= recoveryNanos && latency.get(i) > 0) {
                after.add(latency.get(i) / 1_000_000L);
            }
        }
        Collections.sort(after);
        long p50 = after.isEmpty() ? -1 : after.get(after.size() / 2);
        long p99 = after.isEmpty() ? -1 : after.get(Math.min(after.size() - 1, (int) (after.size() * 0.99)));
        return new Outcome(
                scenario,
                operations,
                requests,
                ok.get(),
                failed.get(),
                recovery,
                baseline,
                timeline,
                seconds,
                p50,
                p99);
    }

    private static double ratio(AtomicLongArray num, AtomicLongArray den, int from, int to) {
        long n = 0, d = 0;
        for (int s = from; s < to; s++) {
            n += num.get(s);
            d += den.get(s);
        }
        return d == 0 ? 0 : (double) n / d;
    }

    private static void report(Settings settings, List<Outcome> outcomes) {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(
                Locale.ROOT,
                "Load %d operations/s (open loop, one virtual thread per operation, POST with Idempotency-Key) for %d s;"
                        + " server capacity %d requests/s; outage (all 503) from %d s to %d s; maxAttempts %d; backoff 100 ms..10 s full"
                        + " jitter; breaker wait %d s. JDK %s, %d cores.%n%n",
                settings.rate(),
                settings.seconds(),
                settings.capacity(),
                settings.healthy(),
                settings.healthy() + settings.outage(),
                settings.maxAttempts(),
                settings.breakerWait(),
                Runtime.version(),
                Runtime.getRuntime().availableProcessors()));
        sb.append(
                "| configuration | operations | server requests | amplification | amplification outage+5 s | peak requests/s |"
                        + " operations succeeded | recovery time | latency p50 / p99 after recovery |\n|---|---|---|---|---|---|---|---|---|\n");
        int from = settings.healthy();
        int to = settings.healthy() + settings.outage() + 5;
        for (Outcome o : outcomes) {
            long windowRequests = 0, windowStarted = 0, peak = 0;
            for (int s = 0; s < o.timeline().requests.length(); s++) {
                peak = Math.max(peak, o.timeline().requests.get(s));
                if (s >= from && s < to) {
                    windowRequests += o.timeline().requests.get(s);
                    windowStarted += o.timeline().started.get(s);
                }
            }
            sb.append(String.format(
                    Locale.ROOT,
                    "| %s | %d | %d | %.2f | %.2f | %d | %.1f %% | %s | %d / %d ms |%n",
                    o.scenario().name(),
                    o.operations(),
                    o.requests(),
                    (double) o.requests() / o.operations(),
                    windowStarted == 0 ? 0 : (double) windowRequests / windowStarted,
                    peak,
                    100.0 * o.succeeded() / o.operations(),
                    Double.isNaN(o.recoverySeconds())
                            ? "not within the run"
                            : String.format(Locale.ROOT, "%.0f s", o.recoverySeconds()),
                    o.p50Millis(),
                    o.p99Millis()));
        }
        sb.append("\nPer second (server requests / served 201; operations started / later succeeded):\n\n| s |");
        for (Outcome o : outcomes) {
            sb.append(' ').append(o.scenario().name()).append(" |");
        }
        sb.append("\n|---|");
        outcomes.forEach(o -> sb.append("---|"));
        sb.append('\n');
        for (int s = 0; s < settings.seconds() + 3; s++) {
            sb.append("| ")
                    .append(s)
                    .append(s >= settings.healthy() && s < settings.healthy() + settings.outage() ? " (down)" : "")
                    .append(" |");
            for (Outcome o : outcomes) {
                Timeline t = o.timeline();
                sb.append(String.format(
                        Locale.ROOT,
                        " %d / %d; %d / %d |",
                        t.requests.get(s),
                        t.served.get(s),
                        t.started.get(s),
                        t.succeeded.get(s)));
            }
            sb.append('\n');
        }
        System.out.print(sb);
    }
}
