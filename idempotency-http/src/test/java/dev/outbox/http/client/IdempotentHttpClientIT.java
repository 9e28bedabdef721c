package dev.outbox.http.client;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.sun.net.httpserver.HttpServer;
import dev.outbox.core.retry.Backoff;
import dev.outbox.core.retry.RetryBudget;
import dev.outbox.http.MutableClock;
import dev.outbox.http.TestServer;
import dev.outbox.http.client.ScriptedServlet.Reply;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.github.resilience4j.circuitbreaker.CircuitBreakerConfig;
import io.github.resilience4j.circuitbreaker.CircuitBreakerRegistry;
import java.io.ByteArrayInputStream;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PipedInputStream;
import java.io.PipedOutputStream;
import java.net.ConnectException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The retrying client against a real Jetty server whose answers each test scripts. */
class IdempotentHttpClientIT {
    private static final ScriptedServlet SERVLET = new ScriptedServlet();
    private static final HttpClient HTTP =
            HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    private static TestServer server;

    @BeforeAll
    static void start() throws Exception {
        server = TestServer.start(SERVLET);
    }

    @AfterAll
    static void stop() throws Exception {
        server.close();
    }

    /** Records the delays the client asks for instead of waiting. */
    private static final class RecordingSleeper implements Sleeper {
        final List<Duration> delays = new CopyOnWriteArrayList<>();

        @Override
        public void sleep(Duration delay) {
            delays.add(delay);
        }
    }

    /** A client for which the test server is declared as honouring Idempotency-Key. */
    private static IdempotentHttpClient.Builder client(RecordingSleeper sleeper) {
        return undeclared(sleeper).idempotentTargets(server.uri("/").toString());
    }

    /** A client with no declared targets, as by default. */
    private static IdempotentHttpClient.Builder undeclared(RecordingSleeper sleeper) {
        return IdempotentHttpClient.builder()
                .httpClient(HTTP)
                .sleeper(sleeper)
                .retryBudget(RetryBudget.unlimited())
                .noCircuitBreaker();
    }

    private static HttpRequest post(URI uri) {
        return HttpRequest.newBuilder(uri)
                .POST(HttpRequest.BodyPublishers.ofString("{\"amount\":12}"))
                .build();
    }

    private static HttpRequest post() {
        return post(server.uri("/payments"));
    }

    /** G5 on the client side: one key per operation, the same on every attempt (503, 503, 409, then 201). */
    @Test
    void reusesOneKeyAcrossAllAttemptsOfAnOperation() throws Exception {
        SERVLET.script(i -> switch (i) {
            case 0, 1 -> Reply.of(503);
            case 2 -> Reply.of(409, "Retry-After", "0");
            default -> Reply.of(201);
        });
        RecordingSleeper sleeper = new RecordingSleeper();
        IdempotentHttpClient client = client(sleeper).build();
        CallResult<String> result = client.send(post(), HttpResponse.BodyHandlers.ofString());
        assertThat(result.status()).isEqualTo(201);
        assertThat(result.attempts()).isEqualTo(4);
        assertThat(result.completion()).isEqualTo(Completion.RESPONSE);
        assertThat(SERVLET.received)
                .hasSize(4)
                .allSatisfy(r -> assertThat(r.idempotencyKey()).isEqualTo("\"" + result.idempotencyKey() + "\""));
        assertThat(UUID.fromString(result.idempotencyKey()).version()).isEqualTo(7);
        assertThat(sleeper.delays).hasSize(3);

        SERVLET.script(i -> Reply.of(201));
        CallResult<String> next = client.send(post(), HttpResponse.BodyHandlers.ofString());
        assertThat(next.idempotencyKey()).isNotEqualTo(result.idempotencyKey());

        SERVLET.script(i -> i == 0 ? Reply.of(503) : Reply.of(201));
        CallResult<String> own = client.send(post(), HttpResponse.BodyHandlers.ofString(), "order-42-payment");
        assertThat(own.idempotencyKey()).isEqualTo("order-42-payment");
        assertThat(SERVLET.received)
                .extracting(ScriptedServlet.Received::idempotencyKey)
                .containsExactly("\"order-42-payment\"", "\"order-42-payment\"");

        SERVLET.script(i -> i == 0 ? Reply.of(503) : Reply.of(201));
        client.send(
                HttpRequest.newBuilder(post(), (n, v) -> true)
                        .header("Idempotency-Key", "\"on-the-request\"")
                        .build(),
                HttpResponse.BodyHandlers.ofString());
        assertThat(SERVLET.received)
                .extracting(ScriptedServlet.Received::idempotencyKey)
                .containsOnly("\"on-the-request\"")
                .hasSize(2);
    }

    /**
     * G6 / G5: a POST to a target not declared as honouring Idempotency-Key is sent once whatever the
     * answer, although it carries a minted key (the target may ignore it); a POST without a key is
     * sent once even to a declared target; to a declared target the keyed POST is retried; a GET,
     * which is idempotent, is retried anywhere.
     */
    @Test
    void retriesAPostOnlyWithAKeyToATargetThatHonoursIt() throws Exception {
        SERVLET.script(i -> Reply.of(503));
        RecordingSleeper sleeper = new RecordingSleeper();
        IdempotentHttpClient plain = undeclared(sleeper).build();
        CallResult<String> result = plain.send(post(), HttpResponse.BodyHandlers.ofString());
        assertThat(result.status()).isEqualTo(503);
        assertThat(result.attempts()).isOne();
        assertThat(result.completion()).isEqualTo(Completion.NOT_RETRIED);
        assertThat(result.idempotencyKey()).isNotNull();
        assertThat(SERVLET.received)
                .hasSize(1)
                .allSatisfy(r -> assertThat(r.idempotencyKey()).isEqualTo("\"" + result.idempotencyKey() + "\""));
        assertThat(sleeper.delays).isEmpty();

        SERVLET.script(i -> Reply.of(503));
        CallResult<String> keyless =
                client(sleeper).keyedMethods().build().send(post(), HttpResponse.BodyHandlers.ofString());
        assertThat(keyless.attempts()).isOne();
        assertThat(keyless.completion()).isEqualTo(Completion.NOT_RETRIED);
        assertThat(keyless.idempotencyKey()).isNull();
        assertThat(SERVLET.received)
                .hasSize(1)
                .allSatisfy(r -> assertThat(r.idempotencyKey()).isNull());

        SERVLET.script(i -> Reply.of(503));
        assertThat(client(sleeper)
                        .build()
                        .send(post(), HttpResponse.BodyHandlers.ofString())
                        .attempts())
                .isEqualTo(5);
        SERVLET.script(i -> Reply.of(503));
        assertThat(plain.sendKeyed(post(), HttpResponse.BodyHandlers.ofString(), null)
                        .attempts())
                .as("declared per call")
                .isEqualTo(5);

        SERVLET.script(i -> Reply.of(503));
        CallResult<String> get = plain.send(
                HttpRequest.newBuilder(server.uri("/payments/1")).GET().build(), HttpResponse.BodyHandlers.ofString());
        assertThat(get.attempts()).isEqualTo(5);
        assertThat(get.completion()).isEqualTo(Completion.ATTEMPTS_EXHAUSTED);
        assertThat(SERVLET.received).hasSize(5);
    }

    /**
     * G6 / G5, against a plain HTTP server (the JDK's HttpServer) that ignores Idempotency-Key and
     * answers the first request after the client's timeout: with the client's defaults, exactly one
     * POST reaches it, so a timed-out POST cannot create a second order there.
     */
    @Test
    void exactlyOnePostReachesAServerThatIgnoresTheKeyAndAnswersLate() throws Exception {
        AtomicInteger posts = new AtomicInteger();
        CountDownLatch firstAnswered = new CountDownLatch(1);
        HttpServer plain = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        plain.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
        plain.createContext("/orders", exchange -> {
            exchange.getRequestBody().readAllBytes();
            int n = posts.incrementAndGet();
            try {
                if (n == 1) {
                    Thread.sleep(3_000); // the order is created; the answer comes after the client's 1 s timeout
                }
                byte[] reply = ("{\"order\":" + n + "}").getBytes(StandardCharsets.UTF_8);
                exchange.sendResponseHeaders(201, reply.length);
                exchange.getResponseBody().write(reply);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (IOException e) {
                // the client has gone
            } finally {
                exchange.close();
                if (n == 1) {
                    firstAnswered.countDown();
                }
            }
        });
        plain.start();
        try {
            URI orders = URI.create("http://127.0.0.1:" + plain.getAddress().getPort() + "/orders");
            IdempotentHttpClient client = IdempotentHttpClient.builder().build();
            HttpCallException e = assertThrows(
                    HttpCallException.class,
                    () -> client.send(
                            HttpRequest.newBuilder(orders)
                                    .timeout(Duration.ofSeconds(1))
                                    .POST(HttpRequest.BodyPublishers.ofString("{}"))
                                    .build(),
                            HttpResponse.BodyHandlers.ofString()));
            assertThat(e.getCause()).isInstanceOf(HttpTimeoutException.class);
            assertThat(e.attempts()).isOne();
            assertThat(e.completion()).isEqualTo(Completion.NOT_RETRIED);
            assertThat(e.getMessage()).contains("idempotentTargets");
            // wait past the late answer, long enough for any retry (default backoff: well under 1 s) to arrive
            assertThat(firstAnswered.await(30, TimeUnit.SECONDS)).isTrue();
            Thread.sleep(1_000);
            assertThat(posts.get()).isOne();
        } finally {
            plain.stop(0);
        }
    }

    /** G6: 408 (timed out before processing) and 425 (too early) are retried like 429. */
    @Test
    void retriesRequestTimeoutAndTooEarly() throws Exception {
        SERVLET.script(i -> switch (i) {
            case 0 -> Reply.of(408);
            case 1 -> Reply.of(425);
            default -> Reply.of(201);
        });
        CallResult<String> r =
                client(new RecordingSleeper()).build().send(post(), HttpResponse.BodyHandlers.ofString());
        assertThat(r.status()).isEqualTo(201);
        assertThat(r.attempts()).isEqualTo(3);
    }

    /** G6: a response marked Idempotent-Replayed is the server's stored answer: final, even a 503, and no breaker failure. */
    @Test
    void aReplayedResponseIsFinal() throws Exception {
        SERVLET.script(i -> Reply.of(503, "Idempotent-Replayed", "true"));
        IdempotentHttpClient client = client(new RecordingSleeper()).build();
        CallResult<String> r = client.send(post(), HttpResponse.BodyHandlers.ofString());
        assertThat(r.status()).isEqualTo(503);
        assertThat(r.attempts()).isOne();
        assertThat(r.completion()).isEqualTo(Completion.RESPONSE);
        assertThat(SERVLET.received).hasSize(1);
    }

    /**
     * The responses of attempts that are retried are closed: with an InputStream body, the first two
     * (503) streams are closed by the client, and the last one is handed to the caller open.
     */
    @Test
    void closesTheResponsesOfRetriedAttempts() throws Exception {
        SERVLET.script(i -> i < 2 ? Reply.of(503) : Reply.of(201));
        List<InputStream> bodies = new CopyOnWriteArrayList<>();
        List<InputStream> closed = new CopyOnWriteArrayList<>();
        HttpResponse.BodyHandler<InputStream> tracking = TrackedBodies.handler(bodies, closed);
        CallResult<InputStream> result = client(new RecordingSleeper()).build().send(post(), tracking);
        assertThat(result.attempts()).isEqualTo(3);
        assertThat(bodies).hasSize(3);
        assertThat(closed).containsExactly(bodies.get(0), bodies.get(1));
        try (InputStream last = result.body()) {
            assertThat(new String(last.readAllBytes(), StandardCharsets.UTF_8)).isEqualTo("reply 2 status 201");
        }
    }

    /**
     * G6: a refused connection proves that nothing was sent, so it is retried up to maxAttempts, even
     * for a POST to a target not declared as honouring the key, then reported with the attempts
     * made. Without a key, too.
     */
    @Test
    void retriesConnectionFailuresThenReportsTheAttempts() throws Exception {
        // bound but never listening: connections are refused, and no other process can take the port
        // while the test runs, as it could between closing a probe socket and connecting
        try (Socket reserved = new Socket()) {
            reserved.bind(new InetSocketAddress("127.0.0.1", 0));
            retriesConnectionFailuresThenReportsTheAttempts(reserved.getLocalPort());
        }
    }

    private static void retriesConnectionFailuresThenReportsTheAttempts(int closedPort) throws Exception {
        RecordingSleeper sleeper = new RecordingSleeper();
        IdempotentHttpClient client = undeclared(sleeper).build();
        HttpCallException e = assertThrows(
                HttpCallException.class,
                () -> client.send(
                        post(URI.create("http://127.0.0.1:" + closedPort + "/payments")),
                        HttpResponse.BodyHandlers.ofString()));
        assertThat(e.attempts()).isEqualTo(5);
        assertThat(e.completion()).isEqualTo(Completion.ATTEMPTS_EXHAUSTED);
        assertThat(e.idempotencyKey()).isNotNull();
        assertThat(e.getCause()).isInstanceOf(ConnectException.class);
        assertThat(e.getMessage()).contains("after 5 attempts").contains(e.idempotencyKey());
        assertThat(sleeper.delays).hasSize(4);

        IdempotentHttpClient unkeyed =
                undeclared(new RecordingSleeper()).keyedMethods().build();
        HttpCallException keyless = assertThrows(
                HttpCallException.class,
                () -> unkeyed.send(
                        post(URI.create("http://127.0.0.1:" + closedPort + "/payments")),
                        HttpResponse.BodyHandlers.ofString()));
        assertThat(keyless.attempts()).isEqualTo(5);
        assertThat(keyless.idempotencyKey()).isNull();
    }

    /** G6: an attempt that exceeds the per-attempt timeout is abandoned and retried with the same key. */
    @Test
    void retriesAnAttemptThatTimesOut() throws Exception {
        retriedAfterAHeldAttempt(false);
    }

    /**
     * G6: an attempt whose response headers arrived but whose body stalls is abandoned at the
     * per-attempt timeout too, and retried with the same key, rather than waiting for the body as long
     * as the server holds it (60 s here; the client's own request timeout stops at the headers).
     */
    @Test
    void retriesAnAttemptWhoseBodyStalls() throws Exception {
        retriedAfterAHeldAttempt(true);
    }

    /** @param headersFirst whether the held attempt sends its status and headers before it holds */
    private void retriedAfterAHeldAttempt(boolean headersFirst) throws Exception {
        CountDownLatch hold = new CountDownLatch(1);
        try {
            SERVLET.script(i -> i == 0 ? new Reply(200, Map.of(), hold, headersFirst) : Reply.of(201));
            // the held attempt times out whatever the bound; the bound must only be wide enough that the
            // second, answered at once, does not time out too on a loaded machine
            IdempotentHttpClient client = client(new RecordingSleeper())
                    .attemptTimeout(Duration.ofSeconds(5))
                    .build();
            CallResult<String> result = client.send(post(), HttpResponse.BodyHandlers.ofString());
            assertThat(result.status()).isEqualTo(201);
            assertThat(result.attempts()).isEqualTo(2);
            assertThat(SERVLET.received)
                    .extracting(ScriptedServlet.Received::idempotencyKey)
                    .containsOnly("\"" + result.idempotencyKey() + "\"");
        } finally {
            hold.countDown();
        }
    }

    /**
     * G5 on the client side when the caller's thread is interrupted, while the client waits to retry and while an
     * attempt is in flight: the exception carries the key the attempts were sent with, also a minted one, so the
     * operation can be retried later with it and its outcome learned, not run a second time under a new key. Before,
     * a plain InterruptedException left the minted key to no one.
     */
    @Test
    void anInterruptedOperationHandsItsKeyToTheCaller() throws Exception {
        SERVLET.script(i -> i == 0 ? Reply.of(503) : Reply.of(201));
        IdempotentHttpClient waiting = client(new RecordingSleeper())
                .sleeper(delay -> {
                    throw new InterruptedException();
                })
                .build();
        Throwable whileWaiting = catchThrowable(() -> waiting.send(post(), HttpResponse.BodyHandlers.ofString()));
        assertThat(whileWaiting).isInstanceOf(CallInterruptedException.class);
        CallInterruptedException interrupted = (CallInterruptedException) whileWaiting;
        assertThat(interrupted.attempts()).isOne();
        assertThat(interrupted.getMessage()).contains("waiting to retry", interrupted.idempotencyKey());
        assertThat(SERVLET.received)
                .extracting(ScriptedServlet.Received::idempotencyKey)
                .containsExactly("\"" + interrupted.idempotencyKey() + "\"");
        CallResult<String> retried =
                waiting.send(post(), HttpResponse.BodyHandlers.ofString(), interrupted.idempotencyKey());
        assertThat(retried.status()).isEqualTo(201);

        CountDownLatch hold = new CountDownLatch(1);
        try {
            SERVLET.script(i -> new Reply(201, Map.of(), hold));
            IdempotentHttpClient client = client(new RecordingSleeper()).build();
            CompletableFuture<Thread> caller = new CompletableFuture<>();
            CompletableFuture<Throwable> outcome = CompletableFuture.supplyAsync(() -> {
                caller.complete(Thread.currentThread());
                return catchThrowable(() -> client.send(post(), HttpResponse.BodyHandlers.ofString()));
            });
            await().atMost(Duration.ofSeconds(30)).until(() -> SERVLET.received.size() == 1);
            caller.get().interrupt();
            Throwable whileSending = outcome.get(30, TimeUnit.SECONDS);
            assertThat(whileSending).isInstanceOf(CallInterruptedException.class);
            CallInterruptedException e = (CallInterruptedException) whileSending;
            assertThat(e.attempts()).isOne();
            assertThat(e.getMessage()).contains("sending");
            assertThat(SERVLET.received.get(0).idempotencyKey()).isEqualTo("\"" + e.idempotencyKey() + "\"");
        } finally {
            hold.countDown();
        }
    }

    /**
     * G6: full jitter, measured through the client's real sleeps. With a seeded generator, every
     * delay before retry n lies in [0, min(cap, base * 2^n)], and the delays spread over that whole
     * range (each quarter holds 15-35 % of them, the mean is near half the ceiling), instead of
     * clustering at the ceiling as plain exponential backoff would.
     */
    @Test
    void fullJitterDelaysStayInRangeAndSpreadOverIt() throws Exception {
        SERVLET.script(i -> Reply.of(503));
        Backoff backoff = Backoff.of(Duration.ofMillis(100), Duration.ofMillis(1600));
        int retriesPerOperation = 6;
        int operations = 300;
        List<List<Duration>> byRetry = new ArrayList<>();
        for (int r = 0; r < retriesPerOperation; r++) {
            byRetry.add(new ArrayList<>());
        }
        IdempotentHttpClient client = null;
        RecordingSleeper sleeper = new RecordingSleeper();
        client = client(sleeper)
                .backoff(backoff)
                .maxAttempts(retriesPerOperation + 1)
                .random(new SplittableRandom(20260301))
                .build();
        for (int op = 0; op < operations; op++) {
            sleeper.delays.clear();
            CallResult<Void> result = client.send(post(), HttpResponse.BodyHandlers.discarding());
            assertThat(result.attempts()).isEqualTo(retriesPerOperation + 1);
            assertThat(sleeper.delays).hasSize(retriesPerOperation);
            for (int r = 0; r < retriesPerOperation; r++) {
                byRetry.get(r).add(sleeper.delays.get(r));
            }
        }
        for (int r = 0; r < retriesPerOperation; r++) {
            long ceiling = Math.min(1600, 100L << r) * 1_000_000L;
            List<Long> nanos = byRetry.get(r).stream().map(Duration::toNanos).toList();
            assertThat(nanos).as("retry %d", r).allSatisfy(d -> assertThat(d).isBetween(0L, ceiling));
            int[] quarters = new int[4];
            for (long d : nanos) {
                quarters[(int) Math.min(3, d * 4 / ceiling)]++;
            }
            for (int q = 0; q < 4; q++) {
                assertThat(quarters[q])
                        .as("retry %d quarter %d of %s", r, q, Arrays.toString(quarters))
                        .isBetween(operations * 15 / 100, operations * 35 / 100);
            }
            double mean = nanos.stream().mapToLong(Long::longValue).average().orElseThrow() / ceiling;
            assertThat(mean).as("retry %d mean / ceiling", r).isBetween(0.43, 0.57);
        }
    }

    /**
     * G6: under a server that fails every request, the retry budget holds total attempts to the
     * configured share: 200 operations, ratio 0.1, floor 1/s over a 10 s window (clock frozen, so the
     * window never slides) → at most 200 * 1.1 + 1 * 10 = 230 requests, against 1000 without it.
     */
    @Test
    void theRetryBudgetBoundsTotalAttemptsUnderAFailingServer() throws Exception {
        SERVLET.script(i -> Reply.of(503));
        RetryBudget budget = RetryBudget.of(0.1, 1, Duration.ofSeconds(10), () -> 0L);
        IdempotentHttpClient client = client(new RecordingSleeper())
                .retryBudget(budget)
                .maxAttempts(5)
                .build();
        int operations = 200;
        int budgetStops = 0;
        for (int i = 0; i < operations; i++) {
            CallResult<Void> r = client.send(post(), HttpResponse.BodyHandlers.discarding());
            assertThat(r.status()).isEqualTo(503);
            if (r.completion() == Completion.BUDGET_EXHAUSTED) {
                budgetStops++;
            }
        }
        int total = SERVLET.received.size();
        System.out.printf(
                "retry budget: %d operations -> %d requests, %d stopped by the budget%n",
                operations, total, budgetStops);
        assertThat(total).isLessThanOrEqualTo(230).isGreaterThanOrEqualTo(225);
        assertThat(budgetStops).isGreaterThan(150);
    }

    /**
     * G6: the per-host circuit breaker opens after its threshold (5 failures in a row from a fresh
     * start), then fails fast with no request reaching the server; after the open wait (10 s on the
     * injected clock) it half-opens, lets trial calls through, and closes once they succeed.
     */
    @Test
    void theBreakerOpensFailsFastThenHalfOpensAndCloses() throws Exception {
        SERVLET.script(i -> Reply.of(503));
        MutableClock clock = new MutableClock(Instant.parse("2026-03-01T12:00:00Z"));
        IdempotentHttpClient client = oneAttemptEach(clock);
        String host = "127.0.0.1:" + server.port();
        for (int i = 0; i < 5; i++) {
            assertThat(client.send(post(), HttpResponse.BodyHandlers.discarding())
                            .status())
                    .isEqualTo(503);
        }
        CircuitBreaker breaker = client.circuitBreakers().orElseThrow().circuitBreaker(host);
        assertThat(breaker.getState()).isEqualTo(CircuitBreaker.State.OPEN);
        assertThat(SERVLET.received).hasSize(5);

        SERVLET.script(i -> Reply.of(200));
        for (int i = 0; i < 3; i++) {
            assertThatThrownBy(() -> client.send(post(), HttpResponse.BodyHandlers.discarding()))
                    .isInstanceOfSatisfying(CircuitOpenException.class, e -> {
                        assertThat(e.host()).isEqualTo(host);
                        assertThat(e.attempts()).isZero();
                    })
                    .hasMessageContaining("circuit breaker for " + host + " is OPEN");
        }
        assertThat(SERVLET.received).as("an open breaker sends nothing").isEmpty();

        clock.advance(Duration.ofSeconds(10).plusMillis(1));
        assertThat(client.send(post(), HttpResponse.BodyHandlers.discarding()).status())
                .isEqualTo(200);
        assertThat(breaker.getState()).isEqualTo(CircuitBreaker.State.HALF_OPEN);
        await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> {
            assertThat(client.send(post(), HttpResponse.BodyHandlers.discarding())
                            .status())
                    .isEqualTo(200);
            assertThat(breaker.getState()).isEqualTo(CircuitBreaker.State.CLOSED);
        });
        assertThat(SERVLET.received).hasSize(3);
    }

    /**
     * G6: a trial call of a half-open breaker whose body handler throws an {@link Error} gives its
     * permission back. Before, the permission was kept: once the three trial calls had ended that
     * way, the breaker waited for calls that would never end and refused the host for good, though
     * it had recovered.
     */
    @Test
    void aHalfOpenBreakerRecoversAfterTrialCallsWhoseHandlerThrewAnError() throws Exception {
        SERVLET.script(i -> Reply.of(503));
        MutableClock clock = new MutableClock(Instant.parse("2026-03-01T12:00:00Z"));
        IdempotentHttpClient client = oneAttemptEach(clock);
        for (int i = 0; i < 5; i++) {
            client.send(post(), HttpResponse.BodyHandlers.discarding());
        }
        CircuitBreaker breaker = client.circuitBreakers().orElseThrow().circuitBreaker("127.0.0.1:" + server.port());
        assertThat(breaker.getState()).isEqualTo(CircuitBreaker.State.OPEN);

        SERVLET.script(i -> Reply.of(200));
        clock.advance(Duration.ofSeconds(10).plusMillis(1));
        HttpResponse.BodyHandler<Void> failing = info -> {
            throw new HandlerError();
        };
        for (int i = 0; i < 3; i++) {
            assertThatThrownBy(() -> client.send(post(), failing)).isInstanceOf(HandlerError.class);
        }
        assertThat(client.send(post(), HttpResponse.BodyHandlers.discarding()).status())
                .as("a trial call after three that threw")
                .isEqualTo(200);
    }

    /** A client that makes one attempt per operation, on {@code clock}: each failure counts in its breaker. */
    private static IdempotentHttpClient oneAttemptEach(MutableClock clock) {
        return IdempotentHttpClient.builder()
                .httpClient(HTTP)
                .sleeper(new RecordingSleeper())
                .clock(clock)
                .maxAttempts(1)
                .build();
    }

    /** What a body handler may throw that is not an exception: an out-of-memory error, an assertion. */
    private static final class HandlerError extends Error {
        private static final long serialVersionUID = 1L;
    }

    private static final Reply HTML_503 =
            Reply.page(503, "text/html", "<html><body><h1>503 Service Unavailable</h1></body></html>");

    /** A body handler that parses JSON, as a caller's mapping does: it throws on anything else. */
    private static final HttpResponse.BodyHandler<String> JSON = info -> HttpResponse.BodySubscribers.mapping(
            HttpResponse.BodySubscribers.ofString(StandardCharsets.UTF_8), IdempotentHttpClientIT::parseJson);

    private static String parseJson(String body) {
        if (!body.startsWith("{")) {
            throw new IllegalArgumentException("not JSON: " + body);
        }
        return body;
    }

    /**
     * G6 / G5: a body handler that fails on a response (a JSON mapping given a gateway's HTML error
     * page) ends the attempt as that response would have: a keyed POST to a declared target is
     * retried after a 503 page and gets its 201; an undeclared POST is sent once, and the caller gets
     * an HttpCallException with the key and the handler's exception; a final page (400) is not
     * retried; and 503 pages are breaker failures, five of them open it. Before, the handler's
     * exception reached the caller as it was: no retry, the minted key lost, the breaker told nothing.
     */
    @Test
    void aBodyHandlerThatFailsOnAnErrorPageEndsTheAttemptAsItsResponseWould() throws Exception {
        SERVLET.script(i -> i == 0 ? HTML_503 : Reply.page(201, "application/json", "{\"id\":7}"));
        CallResult<String> retried = client(new RecordingSleeper()).build().send(post(), JSON);
        assertThat(retried.status()).isEqualTo(201);
        assertThat(retried.body()).isEqualTo("{\"id\":7}");
        assertThat(retried.attempts()).isEqualTo(2);
        assertThat(SERVLET.received)
                .extracting(ScriptedServlet.Received::idempotencyKey)
                .containsExactly("\"" + retried.idempotencyKey() + "\"", "\"" + retried.idempotencyKey() + "\"");

        SERVLET.script(i -> i == 0 ? HTML_503 : Reply.page(201, "application/json", "{\"id\":8}"));
        IdempotentHttpClient plain = undeclared(new RecordingSleeper()).build();
        HttpCallException once = assertThrows(HttpCallException.class, () -> plain.send(post(), JSON));
        assertThat(once.attempts()).isOne();
        assertThat(once.completion()).isEqualTo(Completion.NOT_RETRIED);
        assertThat(once.responseStatus())
                .as("the server's answer, which the handler could not read")
                .hasValue(503);
        assertThat(once.idempotencyKey()).isNotNull();
        assertThat(once.getCause()).isInstanceOf(IllegalArgumentException.class).hasMessageStartingWith("not JSON");
        assertThat(once.getMessage())
                .contains("the body handler failed on the HTTP 503 response (Content-Type text/html")
                .contains(once.idempotencyKey());
        assertThat(SERVLET.received)
                .extracting(ScriptedServlet.Received::idempotencyKey)
                .containsExactly("\"" + once.idempotencyKey() + "\"");

        SERVLET.script(i -> Reply.page(400, "text/html", "<html>Bad Request</html>"));
        HttpCallException fin = assertThrows(
                HttpCallException.class,
                () -> client(new RecordingSleeper()).build().send(post(), JSON));
        assertThat(fin.attempts())
                .as("a final answer, which a retry would get again")
                .isOne();
        assertThat(fin.completion()).isEqualTo(Completion.RESPONSE);
        assertThat(fin.responseStatus()).hasValue(400);

        SERVLET.script(i -> HTML_503);
        IdempotentHttpClient breaking = oneAttemptEach(new MutableClock(Instant.parse("2026-03-01T12:00:00Z")));
        for (int i = 0; i < 5; i++) {
            assertThatThrownBy(() -> breaking.send(post(), JSON)).isInstanceOf(HttpCallException.class);
        }
        assertThat(breaking.circuitBreakers()
                        .orElseThrow()
                        .circuitBreaker("127.0.0.1:" + server.port())
                        .getState())
                .isEqualTo(CircuitBreaker.State.OPEN);
        assertThatThrownBy(() -> breaking.send(post(), JSON)).isInstanceOf(CircuitOpenException.class);
        assertThat(SERVLET.received).hasSize(5);
    }

    /**
     * G6: an operation the open breaker refuses sent nothing, so it does not count in the retry
     * budget. Five operations open the breaker, a hundred more are refused: the budget (ratio 0.1, no
     * floor, clock frozen) then allows no retry, where the refused ones used to raise it to ten.
     */
    @Test
    void operationsTheOpenBreakerRefusesDoNotRaiseTheRetryBudget() throws Exception {
        SERVLET.script(i -> Reply.of(503));
        RetryBudget budget = RetryBudget.of(0.1, 0, Duration.ofSeconds(10), () -> 0L);
        IdempotentHttpClient client = IdempotentHttpClient.builder()
                .httpClient(HTTP)
                .sleeper(new RecordingSleeper())
                .clock(new MutableClock(Instant.parse("2026-03-01T12:00:00Z")))
                .retryBudget(budget)
                .maxAttempts(1)
                .build();
        for (int i = 0; i < 5; i++) {
            client.send(post(), HttpResponse.BodyHandlers.discarding());
        }
        for (int i = 0; i < 100; i++) {
            assertThatThrownBy(() -> client.send(post(), HttpResponse.BodyHandlers.discarding()))
                    .isInstanceOf(CircuitOpenException.class);
        }
        assertThat(SERVLET.received).hasSize(5);
        int retriesAllowed = 0;
        while (retriesAllowed < 50 && budget.tryAcquireRetry()) {
            retriesAllowed++;
        }
        assertThat(retriesAllowed)
                .as("retries allowed by 5 requests sent at ratio 0.1")
                .isZero();
    }

    /**
     * G6: a retry the breaker refuses after its backoff was not sent, so the retry it took from the
     * budget is given back. With ratio 1 and no floor (clock frozen), three operations allow three
     * retries; two are sent (the first two operations' second attempts), and the third operation's
     * first 503 opens the breaker, which then refuses its retry: one retry is left. Before, the refused
     * retry was charged too, and none was left.
     */
    @Test
    void aRetryTheBreakerRefusesIsGivenBackToTheBudget() throws Exception {
        SERVLET.script(i -> Reply.of(503));
        RetryBudget budget = RetryBudget.of(1, 0, Duration.ofSeconds(10), () -> 0L);
        IdempotentHttpClient client = IdempotentHttpClient.builder()
                .httpClient(HTTP)
                .sleeper(new RecordingSleeper())
                .clock(new MutableClock(Instant.parse("2026-03-01T12:00:00Z")))
                .retryBudget(budget)
                .idempotentTargets(server.uri("/").toString())
                .maxAttempts(2)
                .build();
        for (int i = 0; i < 2; i++) {
            CallResult<String> r = client.send(post(), HttpResponse.BodyHandlers.ofString());
            assertThat(r.attempts()).isEqualTo(2);
            assertThat(r.completion()).isEqualTo(Completion.ATTEMPTS_EXHAUSTED);
        }
        CircuitOpenException refused = assertThrows(
                CircuitOpenException.class, () -> client.send(post(), HttpResponse.BodyHandlers.ofString()));
        assertThat(refused.attempts())
                .as("sent before the breaker refused the retry")
                .isOne();
        assertThat(SERVLET.received).hasSize(5);
        int retriesLeft = 0;
        while (retriesLeft < 10 && budget.tryAcquireRetry()) {
            retriesLeft++;
        }
        assertThat(retriesLeft)
                .as("retries left of 3 operations at ratio 1, 2 sent")
                .isOne();
    }

    /**
     * G6 with a breaker config of the caller's own that records I/O errors only ({@code
     * recordExceptions(IOException.class)}, the usual config): 5xx responses count as failures too,
     * since the client records each as a {@link ServerErrorResponse}, an {@code IOException} carrying
     * the status, and five 503s in a row open the breaker. Before, a 5xx was recorded as an exception
     * that is not an {@code IOException}, which such a config counts as a success: 5xx storms never
     * opened the breaker.
     */
    @Test
    void aBreakerConfigRecordingIOExceptionsCounts5xxAsFailures() throws Exception {
        SERVLET.script(i -> Reply.of(503));
        IdempotentHttpClient client = IdempotentHttpClient.builder()
                .httpClient(HTTP)
                .sleeper(new RecordingSleeper())
                .maxAttempts(1)
                .circuitBreakerConfig(CircuitBreakerConfig.custom()
                        .slidingWindowSize(5)
                        .minimumNumberOfCalls(5)
                        .failureRateThreshold(50)
                        .recordExceptions(IOException.class)
                        .build())
                .build();
        CircuitBreaker breaker = client.circuitBreakers().orElseThrow().circuitBreaker("127.0.0.1:" + server.port());
        List<Throwable> recorded = new CopyOnWriteArrayList<>();
        breaker.getEventPublisher().onError(e -> recorded.add(e.getThrowable()));
        for (int i = 0; i < 5; i++) {
            assertThat(client.send(post(), HttpResponse.BodyHandlers.ofString()).status())
                    .isEqualTo(503);
        }
        assertThat(breaker.getState()).isEqualTo(CircuitBreaker.State.OPEN);
        assertThatThrownBy(() -> client.send(post(), HttpResponse.BodyHandlers.ofString()))
                .isInstanceOf(CircuitOpenException.class);
        assertThat(SERVLET.received).hasSize(5);
        assertThat(recorded)
                .hasSize(5)
                .allSatisfy(t -> assertThat(t)
                        .isInstanceOf(ServerErrorResponse.class)
                        .isInstanceOf(IOException.class)
                        .satisfies(e ->
                                assertThat(((ServerErrorResponse) e).status()).isEqualTo(503)));
    }

    /**
     * The caller's own Idempotency-Key is sent as the caller wrote it, bare on every attempt, while
     * the result gives the key; a malformed one is refused before sending. Before, a bare key was sent
     * quoted ({@code "pay-42"}), and a target that takes the value as opaque saw another key than from
     * clients that send it bare.
     */
    @Test
    void sendsTheCallersOwnKeyAsWritten() throws Exception {
        SERVLET.script(i -> i == 0 ? Reply.of(503) : Reply.of(201));
        String key = "pay-" + UUID.randomUUID();
        CallResult<String> result = client(new RecordingSleeper())
                .build()
                .send(
                        HttpRequest.newBuilder(post(), (n, v) -> true)
                                .header("Idempotency-Key", key)
                                .build(),
                        HttpResponse.BodyHandlers.ofString());
        assertThat(result.status()).isEqualTo(201);
        assertThat(result.idempotencyKey()).isEqualTo(key);
        assertThat(SERVLET.received)
                .extracting(ScriptedServlet.Received::idempotencyKey)
                .containsExactly(key, key);

        SERVLET.script(i -> Reply.of(201));
        assertThatThrownBy(() -> client(new RecordingSleeper())
                        .build()
                        .send(
                                HttpRequest.newBuilder(post(), (n, v) -> true)
                                        .header("Idempotency-Key", "not\"quoted")
                                        .build(),
                                HttpResponse.BodyHandlers.ofString()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("quoted string");
        assertThat(SERVLET.received).isEmpty();
    }

    /**
     * The body of a call that may be retried is held in memory, at most maxBufferedBody: a longer one,
     * of known length or not, fails the call with IllegalArgumentException naming the setting before
     * anything is sent; a call that is never retried sends such a body as before, unread by the
     * client; a body within the bound is sent whole on every attempt.
     */
    @Test
    void aBodyLongerThanMaxBufferedBodyFailsACallThatMayBeRetriedBeforeSending() throws Exception {
        SERVLET.script(i -> Reply.of(201));
        IdempotentHttpClient small =
                client(new RecordingSleeper()).maxBufferedBody(8).build();
        assertThatThrownBy(() -> small.send(post(), HttpResponse.BodyHandlers.ofString()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("is 13 bytes long")
                .hasMessageContaining("maxBufferedBody (8 bytes)")
                .hasMessageContaining("Raise maxBufferedBody(...)");
        byte[] thirteen = "{\"amount\":12}".getBytes(StandardCharsets.UTF_8);
        assertThatThrownBy(() -> small.send(
                        HttpRequest.newBuilder(server.uri("/payments"))
                                .POST(HttpRequest.BodyPublishers.ofInputStream(
                                        () -> new ByteArrayInputStream(thirteen)))
                                .build(),
                        HttpResponse.BodyHandlers.ofString()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("is longer than 8 bytes")
                .hasMessageContaining("build the request anew");
        assertThat(SERVLET.received).isEmpty();

        CallResult<String> once = undeclared(new RecordingSleeper())
                .maxBufferedBody(8)
                .build()
                .send(post(), HttpResponse.BodyHandlers.ofString());
        assertThat(once.status()).as("a call never retried is not held").isEqualTo(201);
        assertThat(SERVLET.received).hasSize(1);
    }

    /**
     * A body publisher that stalls (a stream that never delivers a byte) fails the call once the
     * attempt's timeout has passed, with nothing sent, and the thread that read it is released: the
     * blocked read ends. Before, the read went on for as long as the stream stayed silent, holding the
     * thread and the stream after the call had failed.
     */
    @Test
    void aStalledBodyPublisherFailsTheCallAndItsReadEnds() throws Exception {
        SERVLET.script(i -> Reply.of(201));
        CountDownLatch readEnded = new CountDownLatch(1);
        PipedOutputStream neverWritten = new PipedOutputStream();
        InputStream stalled = new FilterInputStream(new PipedInputStream(neverWritten)) {
            @Override
            public int read(byte[] b, int off, int len) throws IOException {
                try {
                    return super.read(b, off, len);
                } finally {
                    readEnded.countDown();
                }
            }
        };
        IdempotentHttpClient client = client(new RecordingSleeper())
                .attemptTimeout(Duration.ofMillis(500))
                .build();
        try {
            assertThatThrownBy(() -> client.send(
                            HttpRequest.newBuilder(server.uri("/payments"))
                                    .POST(HttpRequest.BodyPublishers.ofInputStream(() -> stalled))
                                    .build(),
                            HttpResponse.BodyHandlers.ofString()))
                    .isInstanceOf(HttpCallException.class)
                    .hasMessageContaining("its body publisher did not finish within 500ms");
            assertThat(SERVLET.received).as("nothing sent").isEmpty();
            assertThat(readEnded.await(10, TimeUnit.SECONDS))
                    .as("the stalled read ended after the call failed")
                    .isTrue();
        } finally {
            neverWritten.close();
        }
    }

    /**
     * The client keeps breakers for at most maxCircuitBreakers hosts: past it, the breaker of the host
     * called least recently goes (not the one created first), so that a client calling ever new hosts
     * does not keep one for each of them.
     */
    @Test
    void theBreakerOfTheHostCalledLeastRecentlyGoesPastTheLimit() {
        IdempotentHttpClient client = IdempotentHttpClient.builder()
                .httpClient(HTTP)
                .sleeper(new RecordingSleeper())
                .maxAttempts(1)
                .maxCircuitBreakers(2)
                .build();
        // ports nothing listens on: each call fails at once, and each host gets a breaker
        for (int port : new int[] {1, 2, 1, 3}) {
            assertThatThrownBy(() -> client.send(
                            HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/"))
                                    .build(),
                            HttpResponse.BodyHandlers.discarding()))
                    .isInstanceOf(HttpCallException.class);
        }
        assertThat(client.circuitBreakers().orElseThrow().getAllCircuitBreakers())
                .extracting(CircuitBreaker::getName)
                .containsExactlyInAnyOrder("127.0.0.1:1", "127.0.0.1:3");
    }

    /**
     * A host with an attempt in flight keeps its breaker past maxCircuitBreakers, so the attempt's
     * failure counts for the host's next call. Bound 1, a breaker that opens on one failure: host A's
     * attempt is held by its server while two other hosts are called, then A answers 503, which opens
     * A's breaker: A's next call is refused without being sent, and the registry is back at the bound
     * with A's open breaker. The refused call held A only while it was refused: a call to another host
     * then drops A's idle breaker. Before, the call to the first other host dropped A's breaker under
     * its attempt, the 503 was recorded in a breaker no longer in the registry, and A's next call got
     * a fresh closed breaker and was sent.
     */
    @Test
    void anAttemptInFlightKeepsItsHostsBreakerPastTheLimit() throws Exception {
        HeldServer a = new HeldServer();
        ExecutorService caller = Executors.newVirtualThreadPerTaskExecutor();
        try {
            IdempotentHttpClient client =
                    openingOnOneFailure().maxCircuitBreakers(1).build();
            CircuitBreakerRegistry registry = client.circuitBreakers().orElseThrow();
            Future<CallResult<Void>> inFlight = caller.submit(() -> client.send(a.get(), DISCARD));
            a.awaitArrived();
            for (int port : new int[] {1, 2}) {
                assertThatThrownBy(() -> client.send(refused(port), DISCARD)).isInstanceOf(HttpCallException.class);
            }
            a.release();
            assertThat(inFlight.get(10, TimeUnit.SECONDS).status()).isEqualTo(503);

            assertThatThrownBy(() -> client.send(a.get(), DISCARD))
                    .isInstanceOfSatisfying(
                            CircuitOpenException.class,
                            e -> assertThat(e.host()).isEqualTo(a.host()));
            assertThat(a.received).as("requests that reached A").hasValue(1);
            assertThat(registry.getAllCircuitBreakers())
                    .as("back at the bound, with A's breaker")
                    .singleElement()
                    .satisfies(breaker -> {
                        assertThat(breaker.getName()).isEqualTo(a.host());
                        assertThat(breaker.getState()).isEqualTo(CircuitBreaker.State.OPEN);
                        assertThat(breaker.getMetrics().getNumberOfFailedCalls())
                                .isOne();
                    });

            assertThatThrownBy(() -> client.send(refused(3), DISCARD)).isInstanceOf(HttpCallException.class);
            assertThat(registry.getAllCircuitBreakers())
                    .as("A idle after its refused call")
                    .extracting(CircuitBreaker::getName)
                    .containsExactly("127.0.0.1:3");
        } finally {
            a.close();
            caller.close();
        }
    }

    /**
     * The registry shrinks back to maxCircuitBreakers as the attempts that held it past the bound end,
     * never dropping the breaker of a host whose attempt is still in flight. Bound 1: attempts to A
     * and B in flight while a third host is called leave three breakers; when B's attempt ends, the
     * third host's goes (B's, just called, stays beside A's, in flight); when A's ends, B's goes and
     * A's is left, with A's failure; a call to another host then drops A's, idle. Before, each call
     * dropped the breaker of the host called least recently, in flight or not, and the registry held
     * one breaker throughout.
     */
    @Test
    void theBreakersShrinkBackToTheLimitAsTheAttemptsInFlightEnd() throws Exception {
        HeldServer a = new HeldServer();
        HeldServer b = new HeldServer();
        ExecutorService caller = Executors.newVirtualThreadPerTaskExecutor();
        try {
            IdempotentHttpClient client =
                    openingOnOneFailure().maxCircuitBreakers(1).build();
            CircuitBreakerRegistry registry = client.circuitBreakers().orElseThrow();
            Future<CallResult<Void>> aInFlight = caller.submit(() -> client.send(a.get(), DISCARD));
            a.awaitArrived();
            Future<CallResult<Void>> bInFlight = caller.submit(() -> client.send(b.get(), DISCARD));
            b.awaitArrived();
            assertThatThrownBy(() -> client.send(refused(1), DISCARD)).isInstanceOf(HttpCallException.class);
            assertThat(registry.getAllCircuitBreakers())
                    .as("past the bound while A's and B's attempts are in flight")
                    .extracting(CircuitBreaker::getName)
                    .containsExactlyInAnyOrder(a.host(), b.host(), "127.0.0.1:1");

            b.release();
            assertThat(bInFlight.get(10, TimeUnit.SECONDS).status()).isEqualTo(503);
            assertThat(registry.getAllCircuitBreakers())
                    .as("B's attempt ended, A's in flight")
                    .extracting(CircuitBreaker::getName)
                    .containsExactlyInAnyOrder(a.host(), b.host());

            a.release();
            assertThat(aInFlight.get(10, TimeUnit.SECONDS).status()).isEqualTo(503);
            assertThat(registry.getAllCircuitBreakers())
                    .as("back at the bound, 1, once both ended")
                    .singleElement()
                    .satisfies(breaker -> {
                        assertThat(breaker.getName()).isEqualTo(a.host());
                        assertThat(breaker.getMetrics().getNumberOfFailedCalls())
                                .isOne();
                    });

            assertThatThrownBy(() -> client.send(refused(2), DISCARD)).isInstanceOf(HttpCallException.class);
            assertThat(registry.getAllCircuitBreakers())
                    .extracting(CircuitBreaker::getName)
                    .containsExactly("127.0.0.1:2");
        } finally {
            a.close();
            b.close();
            caller.close();
        }
    }

    /** A client with breakers that open on one failure (I/O error or 5xx) and one attempt per call. */
    private static IdempotentHttpClient.Builder openingOnOneFailure() {
        return IdempotentHttpClient.builder()
                .httpClient(HTTP)
                .sleeper(new RecordingSleeper())
                .maxAttempts(1)
                .attemptTimeout(Duration.ofSeconds(30))
                .circuitBreakerConfig(CircuitBreakerConfig.custom()
                        .slidingWindowSize(1)
                        .minimumNumberOfCalls(1)
                        .failureRateThreshold(50)
                        .build());
    }

    private static final HttpResponse.BodyHandler<Void> DISCARD = HttpResponse.BodyHandlers.discarding();

    /** @return a GET to a port of this machine nothing listens on: it fails at once, and its host gets a breaker */
    private static HttpRequest refused(int port) {
        return HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/"))
                .build();
    }

    /**
     * A plain HTTP server on a port of its own (so a host, and a breaker, of its own) that holds each
     * request until {@link #release()}, then answers 503.
     */
    private static final class HeldServer implements AutoCloseable {
        final AtomicInteger received = new AtomicInteger();
        private final CountDownLatch arrived = new CountDownLatch(1);
        private final CountDownLatch released = new CountDownLatch(1);
        private final HttpServer server;

        HeldServer() throws IOException {
            server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
            server.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
            server.createContext("/", exchange -> {
                received.incrementAndGet();
                arrived.countDown();
                try {
                    if (released.await(30, TimeUnit.SECONDS)) {
                        exchange.sendResponseHeaders(503, -1);
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                } finally {
                    exchange.close();
                }
            });
            server.start();
        }

        String host() {
            return "127.0.0.1:" + server.getAddress().getPort();
        }

        HttpRequest get() {
            return HttpRequest.newBuilder(URI.create("http://" + host() + "/")).build();
        }

        /** Waits until a request is held here: its attempt is in flight. */
        void awaitArrived() throws InterruptedException {
            assertThat(arrived.await(10, TimeUnit.SECONDS))
                    .as("a request reached " + host())
                    .isTrue();
        }

        void release() {
            released.countDown();
        }

        @Override
        public void close() {
            release();
            server.stop(0);
        }
    }

    /**
     * G6: Retry-After is honoured, in seconds and as an HTTP date, as a floor with the jitter on top
     * (clients told the same moment do not return in lockstep); a Retry-After beyond maxRetryAfter
     * ends the operation.
     */
    @Test
    void honoursRetryAfter() throws Exception {
        MutableClock clock = new MutableClock(Instant.parse("2026-03-01T12:00:00Z"));
        String inSevenSeconds = DateTimeFormatter.RFC_1123_DATE_TIME.format(
                clock.instant().plusSeconds(7).atOffset(ZoneOffset.UTC));
        SERVLET.script(i -> switch (i) {
            case 0 -> Reply.of(503, "Retry-After", "3");
            case 1 -> Reply.of(429, "Retry-After", inSevenSeconds);
            default -> Reply.of(200);
        });
        RecordingSleeper sleeper = new RecordingSleeper();
        IdempotentHttpClient client = client(sleeper)
                .clock(clock)
                .maxRetryAfter(Duration.ofSeconds(30))
                .random(new SplittableRandom(20261203))
                .build();
        CallResult<String> result = client.send(post(), HttpResponse.BodyHandlers.ofString());
        assertThat(result.status()).isEqualTo(200);
        // the server's floor plus the full jitter of that retry (ceilings 100 ms, then 200 ms)
        assertThat(sleeper.delays).hasSize(2);
        assertThat(sleeper.delays.get(0))
                .isGreaterThan(Duration.ofSeconds(3))
                .isLessThanOrEqualTo(Duration.ofMillis(3_100));
        assertThat(sleeper.delays.get(1))
                .isGreaterThan(Duration.ofSeconds(7))
                .isLessThanOrEqualTo(Duration.ofMillis(7_200));

        SERVLET.script(i -> Reply.of(503, "Retry-After", "120"));
        sleeper.delays.clear();
        CallResult<String> tooLong = client.send(post(), HttpResponse.BodyHandlers.ofString());
        assertThat(tooLong.status()).isEqualTo(503);
        assertThat(tooLong.attempts()).isOne();
        assertThat(tooLong.completion()).isEqualTo(Completion.RETRY_AFTER_TOO_LONG);
        assertThat(sleeper.delays).isEmpty();
    }

    /** A 409 that is itself a replay (the stored answer of a finished request) is final, not "in flight". */
    @Test
    void aReplayed409IsNotRetried() throws Exception {
        SERVLET.script(i -> new Reply(409, Map.of("Idempotent-Replayed", "true"), null));
        CallResult<String> r =
                client(new RecordingSleeper()).build().send(post(), HttpResponse.BodyHandlers.ofString());
        assertThat(r.attempts()).isOne();
        assertThat(r.completion()).isEqualTo(Completion.RESPONSE);
    }

    /**
     * G6 / G5: a 409 is retried only from a target declared as honouring Idempotency-Key, where it
     * means that the first request with the key is still in flight. From any other target it is the
     * server's own answer, and final: a keyed PUT (idempotent, so otherwise retried) is sent once.
     * Before, the key alone made a 409 retryable, and the PUT was sent maxAttempts times.
     */
    @Test
    void a409FromATargetNotDeclaredIsFinal() throws Exception {
        HttpRequest put = HttpRequest.newBuilder(server.uri("/payments/1"))
                .PUT(HttpRequest.BodyPublishers.ofString("{\"amount\":12}"))
                .build();
        IdempotentHttpClient plain = undeclared(new RecordingSleeper()).build();
        SERVLET.script(i -> Reply.of(409));
        CallResult<String> keyedPut = plain.send(put, HttpResponse.BodyHandlers.ofString(), "payment-1");
        assertThat(keyedPut.status()).isEqualTo(409);
        assertThat(keyedPut.attempts()).isOne();
        assertThat(keyedPut.completion()).isEqualTo(Completion.RESPONSE);
        assertThat(SERVLET.received).hasSize(1);

        SERVLET.script(i -> Reply.of(409));
        CallResult<String> keyedPost = plain.send(post(), HttpResponse.BodyHandlers.ofString());
        assertThat(keyedPost.attempts()).isOne();
        assertThat(keyedPost.completion())
                .as("an answer, not a call left unretried")
                .isEqualTo(Completion.RESPONSE);
        assertThat(SERVLET.received).hasSize(1);

        SERVLET.script(i -> i == 0 ? Reply.of(409) : Reply.of(200));
        CallResult<String> declared =
                client(new RecordingSleeper()).build().send(put, HttpResponse.BodyHandlers.ofString(), "payment-1");
        assertThat(declared.status()).isEqualTo(200);
        assertThat(declared.attempts()).isEqualTo(2);
    }

    /**
     * G5: when an operation fails without a response, the message advises a retry with the same key
     * "to learn the outcome" only for a target that honours the key; for one that is not declared
     * as honouring it, it warns that a retry, even with that key, may run the call again. Before, both
     * got the first advice, which for the second can run the operation twice.
     */
    @Test
    void theAdviceOfAFailedCallTellsATargetThatHonoursTheKeyFromOneNotDeclared() throws Exception {
        try (ServerSocket resetting = new ServerSocket(0, 50, loopback())) {
            // reads each request's head, then resets the connection: an I/O error after the request was sent
            Thread.ofVirtual().start(() -> {
                while (!resetting.isClosed()) {
                    try (Socket s = resetting.accept()) {
                        s.setSoLinger(true, 0);
                        InputStream in = s.getInputStream();
                        int matched = 0;
                        while (matched < 4) {
                            int b = in.read();
                            if (b < 0) {
                                break;
                            }
                            matched = b == "\r\n\r\n".charAt(matched) ? matched + 1 : (b == '\r' ? 1 : 0);
                        }
                    } catch (IOException e) {
                        // the test's end closed the socket, or the client went first
                    }
                }
            });
            URI payments = URI.create("http://127.0.0.1:" + resetting.getLocalPort() + "/payments");

            HttpCallException honoured = assertThrows(
                    HttpCallException.class,
                    () -> undeclared(new RecordingSleeper())
                            .build()
                            .sendKeyed(post(payments), HttpResponse.BodyHandlers.ofString(), "payment-7"));
            assertThat(honoured.completion()).isEqualTo(Completion.ATTEMPTS_EXHAUSTED);
            assertThat(honoured.getMessage())
                    .contains("retry later with the same Idempotency-Key 'payment-7' to learn the outcome");

            HttpCallException ignored = assertThrows(
                    HttpCallException.class,
                    () -> undeclared(new RecordingSleeper())
                            .build()
                            .send(post(payments), HttpResponse.BodyHandlers.ofString(), "payment-8"));
            assertThat(ignored.completion()).isEqualTo(Completion.NOT_RETRIED);
            assertThat(ignored.attempts()).isOne();
            assertThat(ignored.responseStatus()).as("no response came").isEmpty();
            assertThat(ignored.getMessage())
                    .doesNotContain("to learn the outcome")
                    .contains("not declared as honouring Idempotency-Key")
                    .contains("a retry, even with the same key 'payment-8', may run it again")
                    .contains("idempotentTargets");
        }
    }

    /**
     * G6: a connect that hangs (to a server that never accepts, its accept queue full) and times out
     * proves that nothing was sent, so a POST to a target not declared as honouring the key is
     * retried, with the client's defaults but for a short attempt timeout. Before, the connect
     * timeout, the request's timeout and the client's own wait all ran attemptTimeout, the client's
     * wait mostly ran out first with a timeout that proves nothing, and the POST was sent once.
     */
    @Test
    void aConnectThatTimesOutIsRetriedForAPostToATargetNotDeclared() throws Exception {
        List<Socket> queued = new ArrayList<>();
        try (ServerSocket full = new ServerSocket(0, 1, loopback())) {
            InetSocketAddress address = new InetSocketAddress(full.getInetAddress(), full.getLocalPort());
            boolean hangs = false;
            while (!hangs && queued.size() < 50) {
                Socket s = new Socket();
                try {
                    s.connect(address, 200);
                    queued.add(s);
                } catch (SocketTimeoutException e) {
                    s.close();
                    hangs = true;
                }
            }
            assumeTrue(hangs, "a connect to a full accept queue is refused here rather than left hanging");
            IdempotentHttpClient client = IdempotentHttpClient.builder()
                    .attemptTimeout(Duration.ofMillis(500))
                    .sleeper(new RecordingSleeper())
                    .retryBudget(RetryBudget.unlimited())
                    .noCircuitBreaker()
                    .build();
            HttpCallException e = assertThrows(
                    HttpCallException.class,
                    () -> client.send(
                            post(URI.create("http://127.0.0.1:" + full.getLocalPort() + "/payments")),
                            HttpResponse.BodyHandlers.ofString()));
            assertThat(e.getCause()).isInstanceOf(HttpConnectTimeoutException.class);
            assertThat(e.attempts()).isEqualTo(5);
            assertThat(e.completion()).isEqualTo(Completion.ATTEMPTS_EXHAUSTED);
        } finally {
            for (Socket s : queued) {
                s.close();
            }
        }
    }

    /** @return 127.0.0.1, the address the test's URIs name */
    private static InetAddress loopback() throws IOException {
        return InetAddress.getByAddress(new byte[] {127, 0, 0, 1});
    }
}
