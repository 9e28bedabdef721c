package dev.outbox.relay.process;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import java.util.function.IntSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The process's HTTP endpoints, on the JDK's built-in server:
 *
 * <ul>
 *   <li>{@code GET /health} (and {@code /health/live}): 200 while the relay's loops run and its lease
 *       rounds keep ending (failed or not), else 503; a liveness probe, which a lost database does not
 *       fail;
 *   <li>{@code GET /health/ready}: 200 while PostgreSQL and Kafka both answered within the
 *       readiness window, else 503; a readiness probe and the first thing to look at in an alert;
 *   <li>{@code GET /metrics}: the Prometheus text format.
 * </ul>
 */
final class HealthServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(HealthServer.class);

    private final HttpServer server;
    private final ExecutorService executor;
    private final String instance;

    /**
     * Binds the port at once, so that a port in use fails the start before the relay runs; serves
     * after {@link #start()}.
     *
     * @throws IOException when the address cannot be bound
     */
    HealthServer(
            String host,
            int port,
            String instance,
            BooleanSupplier live,
            BooleanSupplier ready,
            IntSupplier ownedShards,
            PrometheusMeterRegistry registry)
            throws IOException {
        this.instance = instance;
        this.server = HttpServer.create(new InetSocketAddress(host, port), 16);
        AtomicInteger n = new AtomicInteger();
        this.executor = Executors.newFixedThreadPool(2, r -> {
            Thread t = new Thread(r, "outbox-relay-http-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
        server.setExecutor(executor);
        server.createContext("/health", ex -> {
            String path = ex.getRequestURI().getPath();
            if (path.equals("/health") || path.equals("/health/") || path.equals("/health/live")) {
                boolean up = live.getAsBoolean();
                json(ex, up ? 200 : 503, body(up ? "UP" : "DOWN", live, ready, ownedShards));
            } else if (path.equals("/health/ready")) {
                boolean ok = live.getAsBoolean() && ready.getAsBoolean();
                json(ex, ok ? 200 : 503, body(ok ? "UP" : "DOWN", live, ready, ownedShards));
            } else {
                send(ex, 404, "text/plain; charset=utf-8", "not found; try /health, /health/ready or /metrics\n");
            }
        });
        server.createContext(
                "/metrics", ex -> send(ex, 200, "text/plain; version=0.0.4; charset=utf-8", registry.scrape()));
        server.createContext(
                "/",
                ex -> send(
                        ex, 404, "text/plain; charset=utf-8", "not found; try /health, /health/ready or /metrics\n"));
    }

    /** Starts serving. */
    void start() {
        server.start();
        LOG.info("outbox-relay[{}] HTTP endpoints on {}: /health, /health/ready, /metrics", instance, address());
    }

    /** @return the bound address */
    InetSocketAddress address() {
        return server.getAddress();
    }

    private String body(String status, BooleanSupplier live, BooleanSupplier ready, IntSupplier ownedShards) {
        return "{\"status\":\"" + status + "\",\"instance\":" + Json.quote(instance) + ",\"live\":"
                + live.getAsBoolean() + ",\"ready\":" + ready.getAsBoolean() + ",\"ownedShards\":"
                + ownedShards.getAsInt() + "}\n";
    }

    private static void json(HttpExchange ex, int status, String body) throws IOException {
        send(ex, status, "application/json", body);
    }

    private static void send(HttpExchange ex, int status, String contentType, String body) throws IOException {
        try (ex) {
            String method = ex.getRequestMethod();
            if (!method.equals("GET") && !method.equals("HEAD")) {
                ex.getResponseHeaders().set("Allow", "GET, HEAD");
                ex.sendResponseHeaders(405, -1);
                return;
            }
            byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
            ex.getResponseHeaders().set("Content-Type", contentType);
            ex.getResponseHeaders().set("Cache-Control", "no-store");
            if (method.equals("HEAD")) {
                ex.sendResponseHeaders(status, -1);
                return;
            }
            ex.sendResponseHeaders(status, bytes.length);
            try (OutputStream out = ex.getResponseBody()) {
                out.write(bytes);
            }
        }
    }

    /** Stops serving at once: during shutdown a refused connection reads as "not ready", which it is. */
    @Override
    public void close() {
        server.stop(0);
        executor.shutdownNow();
    }
}
