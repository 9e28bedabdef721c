package dev.outbox.http.server;

import static dev.outbox.migrations.jooq.Tables.IDEMPOTENCY_KEY;
import static dev.outbox.migrations.jooq.Tables.OUTBOX_MESSAGE;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.core.retry.RetryBudget;
import dev.outbox.http.MutableClock;
import dev.outbox.http.TestServer;
import dev.outbox.http.client.CallResult;
import dev.outbox.http.client.IdempotentHttpClient;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Metrics;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import jakarta.servlet.DispatcherType;
import jakarta.servlet.Filter;
import jakarta.servlet.RequestDispatcher;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.jooq.DSLContext;
import org.jooq.impl.DSL;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.springframework.mock.web.MockHttpServletRequest;
import org.springframework.mock.web.MockHttpServletResponse;

/** The servlet filter in a real Jetty 12 server, with a real orders app on real PostgreSQL. */
@ExtendWith(RealServices.class)
class IdempotencyFilterIT {
    private static final MutableClock CLOCK = new MutableClock(Instant.now());
    private static final SimpleMeterRegistry METRICS = new SimpleMeterRegistry();
    private static final OrdersApp APP = new OrdersApp();
    private static final HttpClient HTTP =
            HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    private static IdempotencyStore store;
    private static TestServer server;
    private static DSLContext dsl;

    @BeforeAll
    static void start(TestDatabase db) throws Exception {
        dsl = db.dsl();
        dsl.execute(OrdersApp.CREATE_TABLE);
        store = IdempotencyStore.builder()
                .dataSource(db.newDataSource(24))
                .lockTimeout(Duration.ofMillis(500))
                .clock(CLOCK)
                .meterRegistry(METRICS)
                .name("orders")
                .build();
        IdempotencyFilter filter =
                ordersFilter(METRICS, "orders").maxBodyBytes(64 * 1024).build();
        server = TestServer.start(APP, OrdersApp.fakeLogin(), APP.arrivalCounter(), filter);
    }

    @AfterAll
    static void stop() throws Exception {
        server.close();
    }

    /**
     * A filter builder on {@code /orders/*} with the caller scope from the principal or the {@code
     * X-Tenant} header.
     *
     * @param registry where the filter's counters go
     * @param name the filter's name in log lines and metrics
     */
    private static IdempotencyFilter.Builder ordersFilter(MeterRegistry registry, String name) {
        return ordersFilter(store, registry, name);
    }

    /** The same, with another store. */
    private static IdempotencyFilter.Builder ordersFilter(IdempotencyStore store, MeterRegistry registry, String name) {
        return IdempotencyFilter.builder(store)
                .paths("/orders/*")
                .scopeResolver(ScopeResolver.principalOrTenantHeader("X-Tenant"))
                .meterRegistry(registry)
                .name(name);
    }

    /** A POST from tenant {@code it}; set {@code X-User} or another {@code X-Tenant} to change the caller. */
    private static HttpRequest.Builder post(String path, String body) {
        return post(server, path, body);
    }

    /** A POST from tenant {@code it} to another server. */
    private static HttpRequest.Builder post(TestServer to, String path, String body) {
        return anonymous(to, path, body).header("X-Tenant", "it");
    }

    /** A POST from nobody: no principal and no tenant. */
    private static HttpRequest.Builder anonymous(String path, String body) {
        return anonymous(server, path, body);
    }

    private static HttpRequest.Builder anonymous(TestServer to, String path, String body) {
        return HttpRequest.newBuilder(to.uri(path))
                .timeout(Duration.ofSeconds(60))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body));
    }

    private static HttpResponse<String> send(HttpRequest request) throws Exception {
        return HTTP.send(request, HttpResponse.BodyHandlers.ofString());
    }

    private static int orders(String body) {
        return dsl.fetchCount(DSL.table("public.orders"), DSL.field("body").eq(body));
    }

    private static int outboxRows(String body) {
        return dsl.fetchCount(OUTBOX_MESSAGE, OUTBOX_MESSAGE.PAYLOAD.eq(body.getBytes(StandardCharsets.UTF_8)));
    }

    private static int keyRows(String key) {
        return dsl.fetchCount(IDEMPOTENCY_KEY, IDEMPOTENCY_KEY.IDEM_KEY.eq(key));
    }

    private static double count(String outcome) {
        return METRICS.counter(IdempotencyStore.METRIC, "store", "orders", "outcome", outcome)
                .count();
    }

    /** How many waits for a key held by a request in flight ended with {@code outcome}. */
    private static long waits(String outcome) {
        return METRICS.timer(IdempotencyStore.WAIT_METRIC, "store", "orders", "outcome", outcome)
                .count();
    }

    private static String body(String what) {
        return "{\"order\":\"" + what + "-" + UUID.randomUUID() + "\"}";
    }

    /**
     * G5 under concurrency: 50 identical POSTs with one key, sent at once, execute once. The first
     * request holds its transaction until all 50 have reached the server and at least one duplicate
     * has been answered 409, so the others really overlap it: they wait on the key row, those that
     * outwait the 500 ms lock timeout get 409 with Retry-After, and the test clients
     * (IdempotentHttpClient, same key) retry them. Every final response carries the first
     * response's status and body; 49 carry Idempotent-Replayed: true.
     */
    @Test
    void fiftyConcurrentDuplicatesExecuteOnceAndAllGetTheFirstResponse() throws Exception {
        int n = 50;
        String key = UUID.randomUUID().toString();
        String body = body("g5");
        double conflictsBefore = count("conflict");
        APP.arrived = new CountDownLatch(n);
        APP.release = new CountDownLatch(1);
        Thread.ofVirtual().start(() -> {
            try {
                if (APP.arrived.await(60, TimeUnit.SECONDS)) {
                    await().atMost(Duration.ofSeconds(60)).until(() -> count("conflict") > conflictsBefore);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } finally {
                APP.release.countDown();
            }
        });
        IdempotentHttpClient client = IdempotentHttpClient.builder()
                .httpClient(HTTP)
                .idempotentTargets(server.uri("/").toString())
                .retryBudget(RetryBudget.unlimited())
                .noCircuitBreaker()
                .maxAttempts(30)
                .attemptTimeout(Duration.ofSeconds(90))
                .build();
        List<Future<CallResult<String>>> futures = new ArrayList<>();
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = 0; i < n; i++) {
                futures.add(pool.submit(() -> client.send(
                        post("/orders", body).header("X-Hold", "true").build(),
                        HttpResponse.BodyHandlers.ofString(),
                        key)));
            }
        }
        List<CallResult<String>> results = new ArrayList<>();
        for (Future<CallResult<String>> f : futures) {
            results.add(f.get());
        }
        assertThat(orders(body)).isOne();
        assertThat(outboxRows(body)).isOne();
        List<CallResult<String>> executed =
                results.stream().filter(r -> !r.replayed()).toList();
        assertThat(executed).hasSize(1);
        CallResult<String> first = executed.get(0);
        assertThat(first.status()).isEqualTo(201);
        assertThat(first.body()).contains(body.replace("\"", "\\\""));
        for (CallResult<String> r : results) {
            assertThat(r.status()).isEqualTo(201);
            assertThat(r.body()).isEqualTo(first.body());
            assertThat(r.response().headers().firstValue("Location"))
                    .isEqualTo(first.response().headers().firstValue("Location"));
            assertThat(r.idempotencyKey()).isEqualTo(key);
        }
        assertThat(results.stream().filter(CallResult::replayed).count()).isEqualTo(n - 1);
        assertThat(first.response().headers().firstValue("X-Request-Only")).contains("not stored");
        assertThat(results.stream()
                        .filter(CallResult::replayed)
                        .map(r -> r.response().headers().firstValue("X-Request-Only")))
                .allMatch(h -> h.isEmpty());
        int retries = results.stream().mapToInt(CallResult::retries).sum();
        double conflicts = count("conflict") - conflictsBefore;
        System.out.printf("G5: %d requests, %d retries after %s conflicts (409)%n", n, retries, conflicts);
        assertThat(conflicts).isPositive();
        assertThat((double) retries).isEqualTo(conflicts);
    }

    /**
     * G5 / G6 with a request body that can be read once ({@code BodyPublishers.ofInputStream} over one
     * stream): the client reads it before the first attempt and sends the same bytes on every
     * attempt. The first attempt times out (1 s attemptTimeout) while the handler holds its
     * transaction with the order written; it is then let go and commits. The retry, with the same key
     * and the whole body, is answered with the first request's response, replayed: one order. Before,
     * the retry sent the exhausted stream, an empty body, which the server answered 422 (another
     * request under the key), and the client returned that 422 as final although the order was placed.
     */
    @Test
    void aBodyThatCanBeReadOnceIsSentWholeOnTheRetryAfterATimeout() throws Exception {
        String key = UUID.randomUUID().toString();
        String body = body("one-shot");
        InputStream once = new ByteArrayInputStream(body.getBytes(StandardCharsets.UTF_8));
        APP.entered = new CountDownLatch(1);
        APP.release = new CountDownLatch(1);
        IdempotentHttpClient client = IdempotentHttpClient.builder()
                .httpClient(HTTP)
                .idempotentTargets(server.uri("/").toString())
                .retryBudget(RetryBudget.unlimited())
                .noCircuitBreaker()
                .attemptTimeout(Duration.ofSeconds(1))
                .maxAttempts(10)
                .sleeper(delay -> {
                    // the first attempt has timed out: let its handler commit, then wait as asked
                    APP.release.countDown();
                    Thread.sleep(delay);
                })
                .build();
        HttpRequest request = HttpRequest.newBuilder(server.uri("/orders"))
                .header("Content-Type", "application/json")
                .header("X-Tenant", "it")
                .header("X-Hold", "true")
                .POST(HttpRequest.BodyPublishers.ofInputStream(() -> once))
                .build();
        CallResult<String> result;
        try {
            result = client.send(request, HttpResponse.BodyHandlers.ofString(), key);
        } finally {
            APP.release.countDown();
        }
        assertThat(APP.entered.getCount())
                .as("the first attempt reached the handler")
                .isZero();
        assertThat(result.status()).as(result.body()).isEqualTo(201);
        assertThat(result.replayed()).isTrue();
        assertThat(result.attempts()).isGreaterThan(1);
        assertThat(result.body()).contains(body.replace("\"", "\\\""));
        assertThat(orders(body)).isOne();
        assertThat(outboxRows(body)).isOne();
    }

    /**
     * G5 with the caller's own key on the request: the client sends it as the caller wrote it, bare,
     * and this server takes the bare and the quoted form for one key, so a repeat sent quoted by
     * another client is replayed. (The client's side, that the value arrives as written, is {@code
     * IdempotentHttpClientIT.sendsTheCallersOwnKeyAsWritten}.)
     */
    @Test
    void theCallersBareKeyAndItsQuotedFormAreOneKey() throws Exception {
        String key = "pay-" + UUID.randomUUID();
        String body = body("bare");
        IdempotentHttpClient client = IdempotentHttpClient.builder()
                .httpClient(HTTP)
                .idempotentTargets(server.uri("/").toString())
                .build();
        CallResult<String> first = client.send(
                post("/orders", body).header("Idempotency-Key", key).build(), HttpResponse.BodyHandlers.ofString());
        assertThat(first.status()).isEqualTo(201);
        assertThat(first.idempotencyKey()).isEqualTo(key);
        HttpResponse<String> quoted = send(post("/orders", body)
                .header("Idempotency-Key", "\"" + key + "\"")
                .build());
        assertThat(quoted.statusCode()).isEqualTo(201);
        assertThat(quoted.headers().firstValue("Idempotent-Replayed")).contains("true");
        assertThat(quoted.body()).isEqualTo(first.body());
        assertThat(orders(body)).isOne();
        assertThat(keyRows(key)).isOne();
    }

    /** G5: the same key with another body gets 422 and changes nothing; the 422 is counted {@code mismatch}. */
    @Test
    void sameKeyWithAnotherBodyIs422() throws Exception {
        String key = UUID.randomUUID().toString();
        String a = body("a");
        String b = body("b");
        assertThat(send(post("/orders", a).header("Idempotency-Key", key).build())
                        .statusCode())
                .isEqualTo(201);
        double mismatches = count("mismatch");
        double conflicts = count("conflict");
        HttpResponse<String> other = send(
                post("/orders", b).header("Idempotency-Key", "\"" + key + "\"").build());
        assertThat(other.statusCode()).isEqualTo(422);
        assertThat(other.headers().firstValue("Content-Type"))
                .hasValueSatisfying(t -> assertThat(t).startsWith("application/problem+json"));
        assertThat(other.body())
                .contains("\"status\":422")
                .contains("already used for a different request")
                .contains("new key");
        assertThat(orders(b)).isZero();
        assertThat(orders(a)).isOne();
        assertThat(count("mismatch")).isEqualTo(mismatches + 1);
        assertThat(count("conflict")).isEqualTo(conflicts);
    }

    /**
     * G5: while the first request is in flight, a duplicate gets 409 with Retry-After, counted {@code
     * conflict} and its wait of the lock timeout timed; afterwards it gets the replay, without a wait.
     */
    @Test
    void duplicateWhileTheFirstIsInFlightIs409WithRetryAfter() throws Exception {
        String key = UUID.randomUUID().toString();
        String body = body("slow");
        APP.entered = new CountDownLatch(1);
        APP.release = new CountDownLatch(1);
        CompletableFuture<HttpResponse<String>> first = HTTP.sendAsync(
                post("/orders", body)
                        .header("Idempotency-Key", key)
                        .header("X-Hold", "true")
                        .build(),
                HttpResponse.BodyHandlers.ofString());
        double conflicts = count("conflict");
        double mismatches = count("mismatch");
        long conflictWaits = waits("conflict");
        long releasedWaits = waits("released");
        try {
            assertThat(APP.entered.await(30, TimeUnit.SECONDS)).isTrue();
            HttpResponse<String> dup =
                    send(post("/orders", body).header("Idempotency-Key", key).build());
            assertThat(dup.statusCode()).isEqualTo(409);
            assertThat(count("conflict")).isEqualTo(conflicts + 1);
            assertThat(waits("conflict")).isEqualTo(conflictWaits + 1);
            assertThat(count("mismatch")).isEqualTo(mismatches);
            assertThat(dup.headers().firstValue("Retry-After")).contains("1");
            assertThat(dup.headers().firstValue("Content-Type"))
                    .hasValueSatisfying(t -> assertThat(t).startsWith("application/problem+json"));
            assertThat(dup.body())
                    .contains("still being processed")
                    .contains("Retry the same request with the same key");
        } finally {
            APP.release.countDown();
        }
        HttpResponse<String> done = first.get(60, TimeUnit.SECONDS);
        assertThat(done.statusCode()).isEqualTo(201);
        HttpResponse<String> replay =
                send(post("/orders", body).header("Idempotency-Key", key).build());
        assertThat(replay.statusCode()).isEqualTo(201);
        assertThat(replay.headers().firstValue("Idempotent-Replayed")).contains("true");
        assertThat(replay.body()).isEqualTo(done.body());
        assertThat(orders(body)).isOne();
        assertThat(waits("conflict")).isEqualTo(conflictWaits + 1);
        assertThat(waits("released")).as("the replay found the key committed").isEqualTo(releasedWaits);
    }

    /**
     * G5 scope across services: two services sharing one {@code idempotency_key} table with the same
     * paths and callers, each with its own application, each run a request with the same key, body,
     * tenant and path once, and never replay each other's response; another instance of the first
     * service (another store of the same application) replays the first one's. Before, there was no
     * application: the second service answered with the first one's stored response and never ran.
     */
    @Test
    void filtersOfDifferentApplicationsOnOneTableDoNotReplayEachOthersResponses(TestDatabase db) throws Exception {
        IdempotencyStore orders = IdempotencyStore.builder()
                .dataSource(db.newDataSource(4))
                .application("order-service")
                .meterRegistry(METRICS)
                .name("order-service")
                .build();
        IdempotencyStore billing = IdempotencyStore.builder()
                .dataSource(db.newDataSource(4))
                .application("billing-service")
                .meterRegistry(METRICS)
                .name("billing-service")
                .build();
        IdempotencyStore ordersElsewhere = IdempotencyStore.builder()
                .dataSource(db.newDataSource(4))
                .application("order-service")
                .meterRegistry(METRICS)
                .name("order-service-2")
                .build();
        try (TestServer a = TestServer.start(
                        APP, ordersFilter(orders, METRICS, "order-service").build());
                TestServer b = TestServer.start(
                        APP, ordersFilter(billing, METRICS, "billing-service").build());
                TestServer a2 = TestServer.start(
                        APP,
                        ordersFilter(ordersElsewhere, METRICS, "order-service-2")
                                .build())) {
            String key = UUID.randomUUID().toString();
            String body = body("shared-table");
            HttpResponse<String> first =
                    send(post(a, "/orders", body).header("Idempotency-Key", key).build());
            assertThat(first.statusCode()).isEqualTo(201);
            HttpResponse<String> other =
                    send(post(b, "/orders", body).header("Idempotency-Key", key).build());
            assertThat(other.statusCode()).isEqualTo(201);
            assertThat(other.headers().firstValue("Idempotent-Replayed"))
                    .as("the other service ran its own request")
                    .isEmpty();
            assertThat(other.body()).isNotEqualTo(first.body());
            assertThat(orders(body)).isEqualTo(2);

            HttpResponse<String> sameService = send(
                    post(a2, "/orders", body).header("Idempotency-Key", key).build());
            assertThat(sameService.headers().firstValue("Idempotent-Replayed")).contains("true");
            assertThat(sameService.body()).isEqualTo(first.body());
            HttpResponse<String> otherAgain =
                    send(post(b, "/orders", body).header("Idempotency-Key", key).build());
            assertThat(otherAgain.headers().firstValue("Idempotent-Replayed")).contains("true");
            assertThat(otherAgain.body()).isEqualTo(other.body());
            assertThat(orders(body)).isEqualTo(2);
            assertThat(keyRows(key)).isEqualTo(2);
        }
    }

    /**
     * G5: a protected endpoint refuses a missing, empty, over-long, malformed or repeated key with
     * 400, before any work. Malformed: neither an RFC 8941 sf-string nor a token ({@code not"quoted},
     * {@code a,b}), or an sf-string with parameters.
     */
    @Test
    void invalidKeysAre400() throws Exception {
        String body = body("bad-key");
        double rejected = count("rejected");
        List<HttpRequest> bad = List.of(
                post("/orders", body).build(),
                post("/orders", body).header("Idempotency-Key", "").build(),
                post("/orders", body).header("Idempotency-Key", "\"\"").build(),
                post("/orders", body).header("Idempotency-Key", "k".repeat(256)).build(),
                post("/orders", body).header("Idempotency-Key", "two words").build(),
                post("/orders", body).header("Idempotency-Key", "not\"quoted").build(),
                post("/orders", body).header("Idempotency-Key", "a,b").build(),
                post("/orders", body).header("Idempotency-Key", "\"a\";p=1").build(),
                post("/orders", body)
                        .header("Idempotency-Key", "a")
                        .header("Idempotency-Key", "b")
                        .build());
        for (HttpRequest request : bad) {
            HttpResponse<String> r = send(request);
            assertThat(r.statusCode()).as("%s", request.headers()).isEqualTo(400);
            assertThat(r.headers().firstValue("Content-Type"))
                    .hasValueSatisfying(t -> assertThat(t).startsWith("application/problem+json"));
            assertThat(r.body()).contains("Idempotency-Key");
        }
        assertThat(send(post("/orders", body).build()).body())
                .contains("requires an Idempotency-Key header")
                .contains("UUID");
        assertThat(send(post("/orders", body)
                                .header("Idempotency-Key", "k".repeat(256))
                                .build())
                        .body())
                .contains("limit is 255");
        assertThat(count("rejected")).isEqualTo(rejected + bad.size() + 2);
        assertThat(orders(body)).isZero();
        // a 255-character key is fine, and unprotected methods need none
        assertThat(send(post("/orders", body)
                                .header("Idempotency-Key", "k".repeat(255))
                                .build())
                        .statusCode())
                .isEqualTo(201);
        assertThat(send(HttpRequest.newBuilder(server.uri("/orders")).GET().build())
                        .statusCode())
                .isEqualTo(405);
    }

    /**
     * G5: a body that a filter ahead of this one has already read and dropped (a JSON body, a form
     * read as a stream, part of a form) would be fingerprinted as empty, or by what is left of it, and
     * the key then reused with any other body. Such a request is refused with 500 and runs nothing;
     * the key is not stored.
     */
    @Test
    void aBodyReadAndDroppedBeforeTheFilterIsRefusedNotFingerprintedAsEmpty() throws Exception {
        IdempotencyFilter filter = ordersFilter(METRICS, "orders").build();
        Filter readsTheStream = (request, response, chain) -> {
            String part = ((HttpServletRequest) request).getHeader("X-Read");
            if (part != null) {
                request.getInputStream().readNBytes(Integer.parseInt(part));
            }
            chain.doFilter(request, response);
        };
        double unavailableBefore = count("body_unavailable");
        try (TestServer early = TestServer.start(APP, readsTheStream, filter)) {
            String key = UUID.randomUUID().toString();
            String form = "order=" + UUID.randomUUID();
            int ordersBefore = dsl.fetchCount(DSL.table("public.orders"));
            List<HttpRequest> dropped = List.of(
                    HttpRequest.newBuilder(early.uri("/orders"))
                            .header("Content-Type", "application/json")
                            .header("X-Read", "100000")
                            .POST(HttpRequest.BodyPublishers.ofString(body("dropped")))
                            .build(),
                    HttpRequest.newBuilder(early.uri("/orders"))
                            .header("Content-Type", "application/x-www-form-urlencoded")
                            .header("X-Read", "100000")
                            .POST(HttpRequest.BodyPublishers.ofString(form))
                            .build(),
                    HttpRequest.newBuilder(early.uri("/orders"))
                            .header("Content-Type", "application/x-www-form-urlencoded")
                            .header("X-Read", "3")
                            .POST(HttpRequest.BodyPublishers.ofString(form))
                            .build());
            for (HttpRequest request : dropped) {
                HttpResponse<String> r = send(HttpRequest.newBuilder(request, (name, value) -> true)
                        .timeout(Duration.ofSeconds(60))
                        .header("X-Tenant", "it")
                        .header("Idempotency-Key", key)
                        .build());
                assertThat(r.statusCode()).as(request.headers().toString()).isEqualTo(500);
                assertThat(r.body()).contains("was read before its Idempotency-Key could be checked");
            }
            assertThat(dsl.fetchCount(DSL.table("public.orders")))
                    .as("the app ran for no request")
                    .isEqualTo(ordersBefore);
            assertThat(keyRows(key)).isZero();
            assertThat(count("body_unavailable") - unavailableBefore)
                    .as("each refusal counted, so that a dashboard shows failures rather than traffic gone")
                    .isEqualTo(3);
        }
    }

    /**
     * A scope resolver that throws fails the request (500) before any key is claimed or the handler
     * runs, and counts it as {@code failed}; before, nothing counted it.
     */
    @Test
    void aScopeResolverThatThrowsFailsTheRequestAndIsCounted() throws Exception {
        IdempotencyFilter filter = ordersFilter(METRICS, "orders")
                .scopeResolver(request -> {
                    throw new IllegalStateException("the tenant directory is down");
                })
                .build();
        double failedBefore = count("failed");
        try (TestServer broken = TestServer.start(APP, filter)) {
            String key = UUID.randomUUID().toString();
            int ordersBefore = dsl.fetchCount(DSL.table("public.orders"));
            HttpResponse<String> r = send(HttpRequest.newBuilder(broken.uri("/orders"))
                    .header("Content-Type", "application/json")
                    .header("Idempotency-Key", key)
                    .POST(HttpRequest.BodyPublishers.ofString(body("unresolved")))
                    .build());
            assertThat(r.statusCode()).isEqualTo(500);
            assertThat(dsl.fetchCount(DSL.table("public.orders"))).isEqualTo(ordersBefore);
            assertThat(keyRows(key)).isZero();
            assertThat(count("failed") - failedBefore).isEqualTo(1);
        }
    }

    /**
     * G5: a form whose body a filter ahead of this one parsed into the request's parameters (here the
     * container, for a filter that asked for a parameter, as Spring Security's {@code CsrfFilter} does
     * without the CSRF header) has no bytes left, but its fields are what the handler reads, and the
     * key covers them. It runs once; the same form, with a {@code Content-Length} or sent chunked, is
     * replayed; the same key with another field value is refused with 422. Before, every such request
     * was refused with 500.
     */
    @Test
    void aFormParsedBeforeTheFilterIsFingerprintedByItsFields() throws Exception {
        IdempotencyFilter filter = ordersFilter(METRICS, "orders").build();
        Filter readsParameters = (request, response, chain) -> {
            request.getParameter("x");
            chain.doFilter(request, response);
        };
        try (TestServer early = TestServer.start(APP, readsParameters, filter)) {
            String key = UUID.randomUUID().toString();
            String order = "form-" + UUID.randomUUID();
            String form = "order=" + order + "&x=1";
            HttpResponse<String> first = send(form(early, key, HttpRequest.BodyPublishers.ofString(form)));
            assertThat(first.statusCode()).isEqualTo(201);
            assertThat(first.body()).contains(order);

            HttpResponse<String> replay = send(form(early, key, HttpRequest.BodyPublishers.ofString(form)));
            assertThat(replay.statusCode()).isEqualTo(201);
            assertThat(replay.headers().firstValue("Idempotent-Replayed")).hasValue("true");
            assertThat(replay.body()).isEqualTo(first.body());
            // the same form sent chunked, without a Content-Length
            byte[] bytes = form.getBytes(StandardCharsets.UTF_8);
            HttpResponse<String> chunked = send(
                    form(early, key, HttpRequest.BodyPublishers.ofInputStream(() -> new ByteArrayInputStream(bytes))));
            assertThat(chunked.statusCode()).isEqualTo(201);
            assertThat(chunked.headers().firstValue("Idempotent-Replayed")).hasValue("true");

            HttpResponse<String> other =
                    send(form(early, key, HttpRequest.BodyPublishers.ofString("order=" + order + "&x=2")));
            assertThat(other.statusCode()).isEqualTo(422);
            assertThat(orders(order)).as("the form's order, run once").isEqualTo(1);
            assertThat(keyRows(key)).isEqualTo(1);
        }
    }

    private static HttpRequest form(TestServer server, String key, HttpRequest.BodyPublisher body) {
        return HttpRequest.newBuilder(server.uri("/orders"))
                .timeout(Duration.ofSeconds(60))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .header("X-Tenant", "it")
                .header("Idempotency-Key", key)
                .POST(body)
                .build();
    }

    /** A body over maxBodyBytes gets 413 and runs nothing. */
    @Test
    void overLargeBodiesAre413() throws Exception {
        String big = "{\"pad\":\"" + "x".repeat(70 * 1024) + "\"}";
        HttpResponse<String> r = send(post("/orders", big)
                .header("Idempotency-Key", UUID.randomUUID().toString())
                .build());
        assertThat(r.statusCode()).isEqualTo(413);
        assertThat(r.body()).contains("larger than 65536 bytes");
        assertThat(orders(big)).isZero();
    }

    /**
     * G5 scope: the same key from two principals, from two tenants, and on two routes executes once
     * in each scope; a replay in one scope returns that scope's response, never another's.
     */
    @Test
    void theSameKeyInDifferentScopesExecutesOncePerScope() throws Exception {
        String key = UUID.randomUUID().toString();
        String body = body("scoped");
        List<HttpRequest> scopes = List.of(
                post("/orders", body)
                        .header("Idempotency-Key", key)
                        .header("X-User", "alice")
                        .build(),
                post("/orders", body)
                        .header("Idempotency-Key", key)
                        .header("X-User", "bob")
                        .build(),
                post("/orders", body)
                        .header("Idempotency-Key", key)
                        .setHeader("X-Tenant", "t1")
                        .build(),
                post("/orders", body)
                        .header("Idempotency-Key", key)
                        .setHeader("X-Tenant", "t2")
                        .build(),
                post("/orders/express", body)
                        .header("Idempotency-Key", key)
                        .header("X-User", "alice")
                        .build());
        List<String> firstBodies = new ArrayList<>();
        for (HttpRequest request : scopes) {
            HttpResponse<String> r = send(request);
            assertThat(r.statusCode()).isEqualTo(201);
            assertThat(r.headers().firstValue("Idempotent-Replayed")).isEmpty();
            firstBodies.add(r.body());
        }
        assertThat(firstBodies).doesNotHaveDuplicates();
        assertThat(orders(body)).isEqualTo(scopes.size());
        for (int i = 0; i < scopes.size(); i++) {
            HttpResponse<String> replay = send(scopes.get(i));
            assertThat(replay.headers().firstValue("Idempotent-Replayed")).contains("true");
            assertThat(replay.body()).isEqualTo(firstBodies.get(i));
        }
        assertThat(orders(body)).isEqualTo(scopes.size());
        assertThat(keyRows(key)).isEqualTo(scopes.size());
    }

    /**
     * G5 / G2: a handler that throws after its writes leaves nothing behind (no key row, no business
     * row, no outbox row); a retry with the same key then executes normally. Same for a handler that
     * answers 5xx.
     */
    @Test
    void failuresLeaveNothingAndTheKeyCanBeRetried() throws Exception {
        for (String failure : List.of("throw", "503")) {
            String key = UUID.randomUUID().toString();
            String body = body("fail-" + failure);
            HttpResponse<String> failed = send(post("/orders", body)
                    .header("Idempotency-Key", key)
                    .header("X-Fail", failure)
                    .build());
            assertThat(failed.statusCode()).as(failure).isEqualTo(failure.equals("throw") ? 500 : 503);
            assertThat(keyRows(key)).isZero();
            assertThat(orders(body)).isZero();
            assertThat(outboxRows(body)).isZero();
            HttpResponse<String> retried =
                    send(post("/orders", body).header("Idempotency-Key", key).build());
            assertThat(retried.statusCode()).isEqualTo(201);
            assertThat(retried.headers().firstValue("Idempotent-Replayed")).isEmpty();
            assertThat(orders(body)).isOne();
            assertThat(outboxRows(body)).isOne();
            assertThat(keyRows(key)).isOne();
        }
    }

    /**
     * G5 with the filter registered twice (a registration of the application's own next to the
     * starter's): the inner pass sees the outer one's transaction and lets the request through, so the
     * call runs once and a retry is replayed. Before, the inner pass claimed the key again in the same
     * transaction, found its own row in flight and answered 409 to every request, for ever.
     */
    @Test
    void aFilterRegisteredTwiceRunsTheCallOnceAndReplays() throws Exception {
        IdempotencyFilter filter = ordersFilter(Metrics.globalRegistry, "twice").build();
        try (TestServer twice = TestServer.start(APP, OrdersApp.fakeLogin(), filter, filter)) {
            String key = UUID.randomUUID().toString();
            String body = body("twice");
            HttpRequest request = HttpRequest.newBuilder(twice.uri("/orders"))
                    .timeout(Duration.ofSeconds(60))
                    .header("Content-Type", "application/json")
                    .header("X-Tenant", "it")
                    .header("Idempotency-Key", key)
                    .POST(HttpRequest.BodyPublishers.ofString(body))
                    .build();
            HttpResponse<String> first = send(request);
            assertThat(first.statusCode()).isEqualTo(201);
            HttpResponse<String> replay = send(request);
            assertThat(replay.statusCode()).isEqualTo(201);
            assertThat(replay.headers().firstValue("Idempotent-Replayed")).contains("true");
            assertThat(replay.body()).isEqualTo(first.body());
            assertThat(orders(body)).isOne();
            assertThat(keyRows(key)).isOne();
        }
    }

    /**
     * G5 / G2 with a response too large to store: a handler whose body passes maxResponseBytes (an echo of a 1 KiB
     * order against 256 bytes, written through the writer as JSON and as text) keeps none of its writes, its key is
     * released, the failure is counted, and the same key then executes under a larger bound. Before, the body was
     * held whatever its size and stored with the writes committed.
     */
    @Test
    void aResponseLargerThanMaxResponseBytesKeepsNothingAndReleasesTheKey() throws Exception {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        IdempotencyFilter filter =
                ordersFilter(registry, "small").maxResponseBytes(256).build();
        try (TestServer small = TestServer.start(APP, OrdersApp.fakeLogin(), filter)) {
            for (String answer : List.of("json", "text")) {
                String key = UUID.randomUUID().toString();
                String body = "{\"order\":\"" + "x".repeat(1024) + UUID.randomUUID() + "\"}";
                HttpResponse<String> tooLarge = send(HttpRequest.newBuilder(small.uri("/orders"))
                        .timeout(Duration.ofSeconds(60))
                        .header("Content-Type", "application/json")
                        .header("X-Tenant", "it")
                        .header("X-Answer", answer)
                        .header("Idempotency-Key", key)
                        .POST(HttpRequest.BodyPublishers.ofString(body))
                        .build());
                assertThat(tooLarge.statusCode()).as(answer).isEqualTo(500);
                assertThat(tooLarge.body()).as(answer).doesNotContain("xxxxxxxx");
                assertThat(orders(body)).as(answer).isZero();
                assertThat(outboxRows(body)).as(answer).isZero();
                assertThat(keyRows(key)).as(answer).isZero();

                HttpResponse<String> retried = send(post("/orders", body)
                        .header("Idempotency-Key", key)
                        .header("X-Answer", answer)
                        .build());
                assertThat(retried.statusCode()).as(answer).isEqualTo(201);
                assertThat(retried.body()).as(answer).contains(body.substring(12, 40));
                assertThat(orders(body)).as(answer).isOne();
            }
            assertThat(registry.counter(IdempotencyStore.METRIC, "store", "small", "outcome", "response_too_large")
                            .count())
                    .isEqualTo(2);
        }
    }

    /**
     * G5 for POST-redirect-GET: a handler that redirects to the order it created ({@code sendRedirect}, 302, as
     * Spring MVC's {@code "redirect:"} does) keeps its writes, and the repeat replays the redirect. The standard
     * policy rolled them back before (3xx stored as a final answer): the order was lost while the client was sent
     * to it.
     */
    @Test
    void aRedirectAfterTheWritesCommitsThemAndIsReplayed() throws Exception {
        String key = UUID.randomUUID().toString();
        String body = body("redirected");
        HttpResponse<String> first = send(post("/orders", body)
                .header("Idempotency-Key", key)
                .header("X-Fail", "redirect")
                .build());
        assertThat(first.statusCode()).isEqualTo(302);
        String location = first.headers().firstValue("Location").orElseThrow();
        assertThat(location).contains("/orders/");
        assertThat(orders(body)).as("the order the client is sent to").isOne();
        assertThat(outboxRows(body)).isOne();

        HttpResponse<String> replay = send(post("/orders", body)
                .header("Idempotency-Key", key)
                .header("X-Fail", "redirect")
                .build());
        assertThat(replay.statusCode()).isEqualTo(302);
        assertThat(replay.headers().firstValue("Location")).contains(location);
        assertThat(replay.headers().firstValue("Idempotent-Replayed")).contains("true");
        assertThat(orders(body)).isOne();
    }

    /**
     * A body written through {@code getWriter()} without a charset in the content type is encoded with the
     * response's charset (ISO-8859-1 here), and the Content-Type sent and replayed names it, as the container's own
     * writer does; it was sent as plain {@code text/plain}, and a client reading UTF-8 got a broken character.
     */
    @Test
    void aBodyWrittenThroughTheWriterNamesItsCharset() throws Exception {
        String key = UUID.randomUUID().toString();
        String body = "Zo\u00eb " + UUID.randomUUID();
        HttpResponse<String> first = send(post("/orders", body)
                .header("Idempotency-Key", key)
                .header("X-Answer", "text")
                .build());
        assertThat(first.statusCode()).isEqualTo(201);
        assertThat(first.headers().firstValue("Content-Type").orElseThrow())
                .startsWith("text/plain")
                .containsIgnoringCase("charset=ISO-8859-1");
        assertThat(first.body()).isEqualTo(body);

        HttpResponse<String> replay = send(post("/orders", body)
                .header("Idempotency-Key", key)
                .header("X-Answer", "text")
                .build());
        assertThat(replay.headers().firstValue("Idempotent-Replayed")).contains("true");
        assertThat(replay.headers().firstValue("Content-Type"))
                .isEqualTo(first.headers().firstValue("Content-Type"));
        assertThat(replay.body()).isEqualTo(body);
    }

    /**
     * G5 / G2: a final refusal (400 set by the handler, 422 into which a framework's exception
     * resolver turned an exception that never reached the filter) keeps none of the handler's writes
     * (no order row, no outbox row) and is stored: a repeat gets it replayed and runs nothing.
     */
    @Test
    void aFinalRefusalKeepsNoWritesAndIsReplayed() throws Exception {
        for (String failure : List.of("400", "resolved-422")) {
            String key = UUID.randomUUID().toString();
            String body = body("refused-" + failure);
            int status = failure.equals("400") ? 400 : 422;
            HttpResponse<String> rejected = send(post("/orders", body)
                    .header("Idempotency-Key", key)
                    .header("X-Fail", failure)
                    .build());
            assertThat(rejected.statusCode()).as(failure).isEqualTo(status);
            assertThat(orders(body)).as(failure).isZero();
            assertThat(outboxRows(body)).as(failure).isZero();
            assertThat(keyRows(key)).as(failure).isOne();
            HttpResponse<String> replay =
                    send(post("/orders", body).header("Idempotency-Key", key).build());
            assertThat(replay.statusCode()).isEqualTo(status);
            assertThat(replay.body()).isEqualTo(rejected.body());
            assertThat(replay.headers().firstValue("Idempotent-Replayed")).contains("true");
            assertThat(orders(body)).isZero();
        }
        assertThat(count("rolled_back")).isGreaterThanOrEqualTo(2);
    }

    /**
     * G5 / G2 with the application's error page: a handler answering with sendError (as Spring MVC's exception
     * resolvers do, here a 422 and a 503) gets the page the application answers without the filter (a JSON page at
     * /error, as Spring Boot's), with the filter also on the error dispatch, where it must not claim the key again.
     * The 422 keeps no writes and is stored: its replay is the same page, marked replayed. The 503 releases the key.
     * Before, the filter answered the reason as text/plain and skipped the error page.
     */
    @Test
    void anErrorSentByTheHandlerIsAnsweredByTheApplicationsErrorPage() throws Exception {
        IdempotencyFilter filter =
                ordersFilter(Metrics.globalRegistry, "error-page").build();
        HttpServlet errorPage = new HttpServlet() {
            @Override
            protected void service(HttpServletRequest req, HttpServletResponse resp) throws IOException {
                resp.setContentType("application/json");
                resp.getWriter()
                        .write("{\"status\":" + req.getAttribute(RequestDispatcher.ERROR_STATUS_CODE)
                                + ",\"message\":\"" + req.getAttribute(RequestDispatcher.ERROR_MESSAGE) + "\"}");
            }
        };
        // under the filter's paths, so that its error dispatch reaches the filter as a covered request would
        try (TestServer pages =
                TestServer.withErrorPage(APP, errorPage, "/orders/error", OrdersApp.fakeLogin(), filter)) {
            String key = UUID.randomUUID().toString();
            String body = body("error-page");
            HttpRequest refused = post(pages, "/orders", body)
                    .header("X-Fail", "resolved-422")
                    .header("Idempotency-Key", key)
                    .build();
            HttpResponse<String> first = send(refused);
            assertThat(first.statusCode()).isEqualTo(422);
            assertThat(first.headers().firstValue("Content-Type"))
                    .hasValueSatisfying(t -> assertThat(t).startsWith("application/json"));
            assertThat(first.body())
                    .startsWith("{\"status\":422,\"message\":\"order ")
                    .endsWith("out of stock\"}");
            assertThat(orders(body)).isZero();
            assertThat(outboxRows(body)).isZero();
            assertThat(keyRows(key)).isOne();
            HttpResponse<String> replay = send(refused);
            assertThat(replay.statusCode()).isEqualTo(422);
            assertThat(replay.headers().firstValue("Idempotent-Replayed")).contains("true");
            assertThat(replay.headers().firstValue("Content-Type"))
                    .isEqualTo(first.headers().firstValue("Content-Type"));
            assertThat(replay.body()).isEqualTo(first.body());
            assertThat(orders(body)).isZero();

            String released = UUID.randomUUID().toString();
            String unavailable = body("error-page-503");
            HttpResponse<String> busy = send(post(pages, "/orders", unavailable)
                    .header("X-Fail", "503")
                    .header("Idempotency-Key", released)
                    .build());
            assertThat(busy.statusCode()).isEqualTo(503);
            assertThat(busy.body()).isEqualTo("{\"status\":503,\"message\":\"inventory unavailable\"}");
            assertThat(orders(unavailable)).isZero();
            assertThat(keyRows(released)).isZero();
        }
    }

    /**
     * G5: the filter claims a key once, on the request itself (or a forward). An error dispatch (the error page of a
     * request the filter ended with sendError: Tomcat keeps the original POST for it) or an include passes through
     * it untouched, even with the request's Idempotency-Key and a covered path, and so does an async dispatch. Before, such a dispatch claimed the
     * key a second time, with another path and an empty body: a mismatch or a replay written into the error page.
     */
    @Test
    void otherDispatchesPassThroughWithoutClaimingTheKey() throws Exception {
        IdempotencyFilter filter =
                ordersFilter(Metrics.globalRegistry, "dispatches").build();
        for (DispatcherType type : List.of(DispatcherType.ERROR, DispatcherType.INCLUDE, DispatcherType.ASYNC)) {
            String key = UUID.randomUUID().toString();
            MockHttpServletRequest request = new MockHttpServletRequest("POST", "/orders");
            request.setServletPath("/orders");
            request.setDispatcherType(type);
            request.addHeader("Idempotency-Key", key);
            request.addHeader("X-Tenant", "it");
            request.setContentType("application/json");
            request.setContent(body("dispatch").getBytes(StandardCharsets.UTF_8));
            MockHttpServletResponse response = new MockHttpServletResponse();
            List<Object> transactions = new ArrayList<>();
            filter.doFilter(
                    request,
                    response,
                    (req, res) -> transactions.add(req.getAttribute(IdempotencyFilter.TX_ATTRIBUTE)));
            assertThat(transactions)
                    .as("%s: the chain's calls, and the transaction each saw", type)
                    .containsExactly((Object) null);
            assertThat(keyRows(key)).as("%s", type).isZero();
            assertThat(response.getStatus()).as("%s", type).isEqualTo(200);
        }
    }

    /**
     * G5 / G2: an answer that means "not now" (429 with Retry-After) keeps none of the handler's
     * writes and is not stored: the key is released, and the retry with the same key runs anew.
     */
    @Test
    void aRetryLaterAnswerReleasesTheKey() throws Exception {
        String key = UUID.randomUUID().toString();
        String body = body("throttled");
        HttpResponse<String> throttled = send(post("/orders", body)
                .header("Idempotency-Key", key)
                .header("X-Fail", "429")
                .build());
        assertThat(throttled.statusCode()).isEqualTo(429);
        assertThat(throttled.headers().firstValue("Retry-After")).contains("1");
        assertThat(orders(body)).isZero();
        assertThat(outboxRows(body)).isZero();
        assertThat(keyRows(key)).isZero();
        HttpResponse<String> retried =
                send(post("/orders", body).header("Idempotency-Key", key).build());
        assertThat(retried.statusCode()).isEqualTo(201);
        assertThat(retried.headers().firstValue("Idempotent-Replayed")).isEmpty();
        assertThat(orders(body)).isOne();
        assertThat(outboxRows(body)).isOne();
    }

    /**
     * G5: the fingerprint covers the query string: the same key and body sent to {@code
     * /orders?dry_run=true} and then to {@code /orders} is two requests, so the second gets 422, not
     * the dry run's stored answer.
     */
    @Test
    void theSameKeyWithAnotherQueryStringIs422() throws Exception {
        String key = UUID.randomUUID().toString();
        String body = body("query");
        assertThat(send(post("/orders?dry_run=true", body)
                                .header("Idempotency-Key", key)
                                .build())
                        .statusCode())
                .isEqualTo(201);
        HttpResponse<String> other =
                send(post("/orders", body).header("Idempotency-Key", key).build());
        assertThat(other.statusCode()).isEqualTo(422);
        assertThat(other.headers().firstValue("Idempotent-Replayed")).isEmpty();
        HttpResponse<String> same = send(post("/orders?dry_run=true", body)
                .header("Idempotency-Key", key)
                .build());
        assertThat(same.headers().firstValue("Idempotent-Replayed")).contains("true");
        assertThat(orders(body)).isOne();
    }

    /**
     * G5 scope: a path whose scope is longer than the btree index row limit allows (about 2.7 kB
     * with the key) is stored under a hash of its scope: it executes once and replays, instead of
     * failing with SQLState 54000 and a 500.
     */
    @Test
    void aVeryLongScopeExecutesOnceAndReplays() throws Exception {
        String key = "k".repeat(255);
        String body = body("long-scope");
        String path = "/orders/" + "%C3%A9".repeat(600); // 600 x é, 3600 characters once encoded in the scope
        HttpResponse<String> first =
                send(post(path, body).header("Idempotency-Key", key).build());
        assertThat(first.statusCode()).as(first.body()).isEqualTo(201);
        HttpResponse<String> replay =
                send(post(path, body).header("Idempotency-Key", key).build());
        assertThat(replay.statusCode()).isEqualTo(201);
        assertThat(replay.headers().firstValue("Idempotent-Replayed")).contains("true");
        assertThat(replay.body()).isEqualTo(first.body());
        assertThat(orders(body)).isOne();
        assertThat(dsl.fetchValue(
                        DSL.select(DSL.max(DSL.length(IDEMPOTENCY_KEY.SCOPE))).from(IDEMPOTENCY_KEY)))
                .isLessThanOrEqualTo(IdempotencyStore.MAX_PLAIN_SCOPE_BYTES);
    }

    /**
     * G5 scope: with a scope that needs a caller (principal or tenant), a request with neither is
     * refused with 401 and runs nothing, instead of sharing one scope with every anonymous caller.
     */
    @Test
    void aRequestWithoutACallerIsRefused() throws Exception {
        String body = body("nobody");
        double unidentified = count("unidentified");
        HttpResponse<String> r = send(anonymous("/orders", body)
                .header("Idempotency-Key", UUID.randomUUID().toString())
                .build());
        assertThat(r.statusCode()).isEqualTo(401);
        assertThat(r.headers().firstValue("Content-Type"))
                .hasValueSatisfying(t -> assertThat(t).startsWith("application/problem+json"));
        assertThat(r.body()).contains("no authenticated caller");
        assertThat(count("unidentified")).isEqualTo(unidentified + 1);
        assertThat(orders(body)).isZero();
    }

    /**
     * G5 scope: a principal whose name is blank (an authentication layer that sets a principal for an
     * empty subject) is no caller for the built-in resolvers: with no tenant either, 401, and nothing
     * runs. Before, every such caller shared the scope {@code principal:}.
     */
    @Test
    void aPrincipalWithABlankNameIsNoCaller() throws Exception {
        String body = body("blank-principal");
        double unidentified = count("unidentified");
        HttpResponse<String> r = send(anonymous("/orders", body)
                .header("X-User", " ")
                .header("Idempotency-Key", UUID.randomUUID().toString())
                .build());
        assertThat(r.statusCode()).isEqualTo(401);
        assertThat(count("unidentified")).isEqualTo(unidentified + 1);
        assertThat(orders(body)).isZero();
    }

    /**
     * G5 scope: a custom identity that is blank (here a missing subject read as "") is no caller, and
     * the request is refused with 401 like one whose identity is null, and runs nothing. Before, every
     * such caller shared the one scope of the empty identity: the first ran, and another caller with
     * the same key got its stored response.
     */
    @Test
    void aBlankIdentityIsNoCaller() throws Exception {
        IdempotencyFilter filter = ordersFilter(METRICS, "orders")
                .scopeResolver(ScopeResolver.identity(
                        request -> Objects.requireNonNullElse(request.getHeader("X-Subject"), "")))
                .build();
        try (TestServer blank = TestServer.start(APP, filter)) {
            String key = UUID.randomUUID().toString();
            String body = body("blank");
            double unidentified = count("unidentified");
            for (String subject : new String[] {null, " "}) {
                HttpRequest.Builder request = HttpRequest.newBuilder(blank.uri("/orders"))
                        .header("Content-Type", "application/json")
                        .header("Idempotency-Key", key)
                        .POST(HttpRequest.BodyPublishers.ofString(body));
                if (subject != null) {
                    request.header("X-Subject", subject);
                }
                HttpResponse<String> r = send(request.build());
                assertThat(r.statusCode()).as("subject '%s'", subject).isEqualTo(401);
            }
            assertThat(count("unidentified")).isEqualTo(unidentified + 2);
            assertThat(orders(body)).isZero();
            assertThat(keyRows(key)).isZero();
            HttpResponse<String> named = send(HttpRequest.newBuilder(blank.uri("/orders"))
                    .header("Content-Type", "application/json")
                    .header("Idempotency-Key", key)
                    .header("X-Subject", "alice")
                    .POST(HttpRequest.BodyPublishers.ofString(body))
                    .build());
            assertThat(named.statusCode()).isEqualTo(201);
            assertThat(orders(body)).isOne();
        }
    }

    /** Keys expire: after the TTL the same key executes anew; purgeExpired then removes only expired keys. */
    @Test
    void aKeyReusedAfterExpiryExecutesAnew() throws Exception {
        String key = UUID.randomUUID().toString();
        String body = body("expiring");
        HttpResponse<String> first =
                send(post("/orders", body).header("Idempotency-Key", key).build());
        assertThat(send(post("/orders", body).header("Idempotency-Key", key).build())
                        .headers()
                        .firstValue("Idempotent-Replayed"))
                .contains("true");
        CLOCK.advance(Duration.ofHours(24).plusMinutes(1));
        HttpResponse<String> again =
                send(post("/orders", body).header("Idempotency-Key", key).build());
        assertThat(again.statusCode()).isEqualTo(201);
        assertThat(again.headers().firstValue("Idempotent-Replayed")).isEmpty();
        assertThat(again.body()).isNotEqualTo(first.body());
        assertThat(orders(body)).isEqualTo(2);
        assertThat(keyRows(key)).isOne();
        store.purgeExpired();
        assertThat(keyRows(key)).as("renewed key survives the purge").isOne();
        assertThat(dsl.fetchCount(
                        IDEMPOTENCY_KEY,
                        IDEMPOTENCY_KEY.EXPIRES_AT.le(OffsetDateTime.ofInstant(CLOCK.instant(), ZoneOffset.UTC))))
                .isZero();
    }
}
