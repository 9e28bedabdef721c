package dev.outbox.http.server;

import static dev.outbox.migrations.jooq.Tables.OUTBOX_MESSAGE;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.http.TestServer;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.jooq.DSLContext;
import org.jooq.impl.DSL;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * How long a key can be held, and what waiting for it costs, through a real Jetty 12 server on
 * real PostgreSQL: each test starts its own server with the store settings it is about.
 */
@ExtendWith(RealServices.class)
class InFlightBoundsIT {
    private static final HttpClient HTTP =
            HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    private static TestDatabase db;
    private static DSLContext dsl;
    private final OrdersApp app = new OrdersApp();
    private final SimpleMeterRegistry metrics = new SimpleMeterRegistry();
    private TestServer server;

    @BeforeAll
    static void createTable(TestDatabase database) {
        db = database;
        dsl = db.dsl();
        dsl.execute(OrdersApp.CREATE_TABLE);
    }

    @AfterEach
    void stop() throws Exception {
        app.release.countDown();
        if (server != null) {
            server.close();
        }
    }

    private void start(IdempotencyStore.Builder store) throws Exception {
        IdempotencyFilter filter = IdempotencyFilter.builder(
                        store.meterRegistry(metrics).name("bounds").build())
                .paths("/orders/*")
                .scopeResolver(ScopeResolver.principalOrTenantHeader("X-Tenant"))
                .meterRegistry(metrics)
                .name("bounds")
                .build();
        server = TestServer.start(app, filter);
    }

    private HttpRequest.Builder post(String body, String key) {
        return HttpRequest.newBuilder(server.uri("/orders"))
                .timeout(Duration.ofSeconds(60))
                .header("Content-Type", "application/json")
                .header("X-Tenant", "it")
                .header("Idempotency-Key", key)
                .POST(HttpRequest.BodyPublishers.ofString(body));
    }

    /** Sends a request whose handler, after its writes, waits for {@code app.release}; returns once it waits. */
    private CompletableFuture<HttpResponse<String>> sendHeld(String body, String key) throws InterruptedException {
        app.entered = new CountDownLatch(1);
        app.release = new CountDownLatch(1);
        CompletableFuture<HttpResponse<String>> held =
                HTTP.sendAsync(post(body, key).header("X-Hold", "true").build(), HttpResponse.BodyHandlers.ofString());
        assertThat(app.entered.await(30, TimeUnit.SECONDS)).isTrue();
        return held;
    }

    private double count(String outcome) {
        return metrics.counter(IdempotencyStore.METRIC, "store", "bounds", "outcome", outcome)
                .count();
    }

    private long waits(String outcome) {
        return metrics.timer(IdempotencyStore.WAIT_METRIC, "store", "bounds", "outcome", outcome)
                .count();
    }

    private static int orders(String body) {
        return dsl.fetchCount(DSL.table("public.orders"), DSL.field("body").eq(body));
    }

    private static int outboxRows(String body) {
        return dsl.fetchCount(OUTBOX_MESSAGE, OUTBOX_MESSAGE.PAYLOAD.eq(body.getBytes(StandardCharsets.UTF_8)));
    }

    /**
     * G5 liveness: a request whose handler hangs after its writes (idle in its transaction) holds
     * its key only for holdTimeout (1 s here): PostgreSQL ends its transaction, the key is released,
     * and a retry with the same key executes instead of getting 409 until the hung request ends.
     * The hung request then fails and leaves nothing: exactly one order and one outbox row remain.
     * It is counted {@code hold_timeout} (and {@code failed}); each retry answered 409 meanwhile is
     * counted {@code conflict} and its wait timed.
     */
    @Test
    void aHungRequestLosesItsKeyAfterTheHoldTimeout() throws Exception {
        start(IdempotencyStore.builder()
                .dataSource(db.newDataSource(4))
                .lockTimeout(Duration.ofMillis(200))
                .holdTimeout(Duration.ofSeconds(1)));
        String key = UUID.randomUUID().toString();
        String body = "{\"order\":\"hung-" + UUID.randomUUID() + "\"}";
        CompletableFuture<HttpResponse<String>> hung = sendHeld(body, key);
        List<Integer> statuses = new ArrayList<>();
        // well before the hung request's 60 s, a retry gets the key and executes
        await().atMost(Duration.ofSeconds(20))
                .pollInterval(Duration.ofMillis(250))
                .untilAsserted(() -> {
                    HttpResponse<String> retry =
                            HTTP.send(post(body, key).build(), HttpResponse.BodyHandlers.ofString());
                    statuses.add(retry.statusCode());
                    assertThat(retry.statusCode()).isEqualTo(201);
                    assertThat(retry.headers().firstValue("Idempotent-Replayed"))
                            .isEmpty();
                });
        app.release.countDown();
        assertThat(hung.get(60, TimeUnit.SECONDS).statusCode()).isGreaterThanOrEqualTo(500);
        assertThat(orders(body)).isOne();
        assertThat(outboxRows(body)).isOne();
        assertThat(statuses).last().isEqualTo(201);
        long conflicts = statuses.stream().filter(s -> s == 409).count();
        assertThat(count("hold_timeout"))
                .as("the hung request, ended by PostgreSQL")
                .isEqualTo(1);
        assertThat(count("failed")).isEqualTo(1);
        assertThat(count("conflict")).isEqualTo(conflicts);
        assertThat(waits("conflict")).as("each 409 after its wait").isEqualTo(conflicts);
        assertThat(HTTP.send(post(body, key).build(), HttpResponse.BodyHandlers.ofString())
                        .headers()
                        .firstValue("Idempotent-Replayed"))
                .contains("true");
    }

    /**
     * G5 without starving the pool: while one request holds its key, 8 duplicates wait for it (lock
     * timeout 4 s) without holding pooled connections, so an unrelated request on the same pool of
     * 2 connections is answered at once rather than after the duplicates' wait. The duplicates then
     * get 409 with Retry-After, each counted {@code conflict} and its wait timed, and the first
     * request completes.
     */
    @Test
    void waitingDuplicatesDoNotHoldPooledConnections() throws Exception {
        start(IdempotencyStore.builder().dataSource(db.newDataSource(2)).lockTimeout(Duration.ofSeconds(4)));
        String key = UUID.randomUUID().toString();
        String body = "{\"order\":\"held-" + UUID.randomUUID() + "\"}";
        CompletableFuture<HttpResponse<String>> first = sendHeld(body, key);
        List<CompletableFuture<HttpResponse<String>>> duplicates = new ArrayList<>();
        long sent = System.nanoTime();
        for (int i = 0; i < 8; i++) {
            duplicates.add(HTTP.sendAsync(post(body, key).build(), HttpResponse.BodyHandlers.ofString()));
        }
        Thread.sleep(500); // let the duplicates reach the store and start waiting
        String other = "{\"order\":\"unrelated-" + UUID.randomUUID() + "\"}";
        long start = System.nanoTime();
        HttpResponse<String> unrelated =
                HTTP.send(post(other, UUID.randomUUID().toString()).build(), HttpResponse.BodyHandlers.ofString());
        long tookMillis = (System.nanoTime() - start) / 1_000_000;
        long duplicatesWaitingMillis = (System.nanoTime() - sent) / 1_000_000;
        System.out.printf(
                "unrelated request answered in %d ms while 8 duplicates had been waiting %d ms%n",
                tookMillis, duplicatesWaitingMillis);
        assertThat(unrelated.statusCode()).isEqualTo(201);
        assertThat(duplicates)
                .as("the duplicates were still waiting when the unrelated request was answered")
                .noneMatch(CompletableFuture::isDone);
        assertThat(tookMillis).isLessThan(2_500);
        for (CompletableFuture<HttpResponse<String>> d : duplicates) {
            HttpResponse<String> r = d.get(60, TimeUnit.SECONDS);
            assertThat(r.statusCode()).isEqualTo(409);
            assertThat(r.headers().firstValue("Retry-After")).contains("1");
        }
        assertThat(count("conflict")).isEqualTo(8);
        assertThat(waits("conflict")).isEqualTo(8);
        assertThat(metrics.timer(IdempotencyStore.WAIT_METRIC, "store", "bounds", "outcome", "conflict")
                        .max(TimeUnit.MILLISECONDS))
                .as("each waited the lock timeout, 4 s")
                .isGreaterThanOrEqualTo(4_000);
        assertThat(waits("released")).isZero();
        app.release.countDown();
        assertThat(first.get(60, TimeUnit.SECONDS).statusCode()).isEqualTo(201);
        assertThat(orders(body)).isOne();
    }
}
