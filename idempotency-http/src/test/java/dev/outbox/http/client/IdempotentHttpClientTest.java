package dev.outbox.http.client;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.outbox.core.retry.RetryBudget;
import io.github.resilience4j.circuitbreaker.CircuitBreakerRegistry;
import java.io.IOException;
import java.io.InputStream;
import java.net.Authenticator;
import java.net.ConnectException;
import java.net.CookieHandler;
import java.net.ProxySelector;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpHeaders;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Flow;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSession;
import org.junit.jupiter.api.Test;

/**
 * The client over a stub {@link HttpClient} whose futures complete when a test needs them to: the
 * races between an attempt's own timeout and its completion that a real server cannot time.
 */
class IdempotentHttpClientTest {
    private static final URI ORDERS = URI.create("http://orders.internal/orders");

    private static HttpRequest post() {
        return HttpRequest.newBuilder(ORDERS)
                .POST(HttpRequest.BodyPublishers.ofString("{}"))
                .build();
    }

    private static IdempotentHttpClient.Builder over(HttpClient http) {
        return IdempotentHttpClient.builder()
                .httpClient(http)
                .sleeper(delay -> {})
                .retryBudget(RetryBudget.unlimited())
                .noCircuitBreaker();
    }

    /**
     * A response that completes after the client's wait for it ran out and before the client cancels
     * the attempt is the attempt's response, its body handed to the caller open. Before, the cancel
     * came too late, the response was dropped with its InputStream body unclosed (holding its
     * connection), and the operation failed with a timeout.
     */
    @Test
    void aResponseThatCompletesJustAsItsAttemptTimesOutIsNotDropped() throws Exception {
        List<InputStream> bodies = new CopyOnWriteArrayList<>();
        List<InputStream> closed = new CopyOnWriteArrayList<>();
        HttpResponse.BodyHandler<InputStream> tracking = TrackedBodies.handler(bodies, closed);
        HttpClient racing = new StubHttpClient() {
            @Override
            public <T> CompletableFuture<HttpResponse<T>> sendAsync(
                    HttpRequest request, HttpResponse.BodyHandler<T> handler) {
                HttpResponse<T> response = respond(request, handler, 201, "created");
                return new CompletableFuture<>() {
                    @Override
                    public HttpResponse<T> get(long timeout, TimeUnit unit)
                            throws InterruptedException, ExecutionException, TimeoutException {
                        if (!isDone()) {
                            // the wait runs out, and the response completes before the client cancels it
                            complete(response);
                            throw new TimeoutException();
                        }
                        return super.get(timeout, unit);
                    }
                };
            }
        };
        CallResult<InputStream> result = over(racing).build().send(post(), tracking);
        assertThat(result.status()).isEqualTo(201);
        assertThat(result.attempts()).isOne();
        assertThat(result.completion()).isEqualTo(Completion.RESPONSE);
        assertThat(bodies).hasSize(1);
        assertThat(closed).isEmpty();
        try (InputStream body = result.body()) {
            assertThat(body).isSameAs(bodies.get(0));
            assertThat(new String(body.readAllBytes(), StandardCharsets.UTF_8)).isEqualTo("created");
        }
    }

    /**
     * G6: before the headers, the HttpClient's own timer for the request's timeout ends an attempt,
     * and its {@link HttpConnectTimeoutException} proves that nothing was sent, so even a POST to a
     * target not declared as honouring the key is retried. That timer starts a little after the
     * client's wait (here 50 ms after it): the client waits for it. Before, the client's wait ran out
     * first and ended the attempt with a timeout that proves nothing, and the POST was not retried.
     */
    @Test
    void theHttpClientsConnectTimeoutEndsAnAttemptBeforeTheHeaders() throws Exception {
        AtomicInteger sent = new AtomicInteger();
        HttpClient connectTimesOut = new StubHttpClient() {
            @Override
            public <T> CompletableFuture<HttpResponse<T>> sendAsync(
                    HttpRequest request, HttpResponse.BodyHandler<T> handler) {
                sent.incrementAndGet();
                long timeout = request.timeout().orElseThrow().toMillis();
                CompletableFuture<HttpResponse<T>> pending = new CompletableFuture<>();
                CompletableFuture.delayedExecutor(timeout + 50, TimeUnit.MILLISECONDS)
                        .execute(() -> {
                            HttpConnectTimeoutException e = new HttpConnectTimeoutException("HTTP connect timed out");
                            e.initCause(new ConnectException("HTTP connect timed out"));
                            pending.completeExceptionally(e);
                        });
                return pending;
            }
        };
        IdempotentHttpClient client = over(connectTimesOut)
                .attemptTimeout(Duration.ofMillis(200))
                .maxAttempts(3)
                .build();
        HttpCallException e =
                assertThrows(HttpCallException.class, () -> client.send(post(), HttpResponse.BodyHandlers.ofString()));
        assertThat(e.getCause()).isInstanceOf(HttpConnectTimeoutException.class);
        assertThat(e.attempts()).isEqualTo(3);
        assertThat(e.completion()).isEqualTo(Completion.ATTEMPTS_EXHAUSTED);
        assertThat(sent).hasValue(3);
    }

    /**
     * A request's own timeout may be longer than the client's bound on attemptTimeout, up to what
     * a Duration holds. Before, one beyond 292 years (the nanoseconds a long holds) failed with an
     * ArithmeticException after the request had been sent.
     */
    @Test
    void aRequestsOwnTimeoutBeyondWhatNanosecondsHoldIsKept() throws Exception {
        HttpClient answering = new StubHttpClient() {
            @Override
            public <T> CompletableFuture<HttpResponse<T>> sendAsync(
                    HttpRequest request, HttpResponse.BodyHandler<T> handler) {
                return CompletableFuture.completedFuture(respond(request, handler, 200, "ok"));
            }
        };
        HttpRequest request = HttpRequest.newBuilder(post(), (n, v) -> true)
                .timeout(Duration.ofDays(365L * 1_000))
                .build();
        CallResult<String> result = over(answering).build().send(request, HttpResponse.BodyHandlers.ofString());
        assertThat(result.status()).isEqualTo(200);
        assertThat(result.body()).isEqualTo("ok");
    }

    /**
     * The client keeps at most maxCircuitBreakers breakers while calls to several hosts run at once,
     * and the breaker it keeps is the one that counts the host's failures. Eight threads call two
     * hosts in turn, bound 1, and the registry holds one breaker after them; then one call to a third host
     * and three failing calls to the first leave that host's breaker alone, with the three failures.
     * The race it guards against (the registry changed outside the lock, a breaker created for a host
     * just dropped staying beside the kept one) is not reproduced reliably here: the registry's listing,
     * read while the calls ran, showed two breakers at times with the lock too, since it is not one
     * instant's, so only the state after the calls is checked.
     */
    @Test
    void concurrentCallsToSeveralHostsKeepAtMostMaxCircuitBreakers() throws Exception {
        AtomicInteger status = new AtomicInteger(200);
        HttpClient answering = new StubHttpClient() {
            @Override
            public <T> CompletableFuture<HttpResponse<T>> sendAsync(
                    HttpRequest request, HttpResponse.BodyHandler<T> handler) {
                return CompletableFuture.completedFuture(respond(request, handler, status.get(), "answer"));
            }
        };
        IdempotentHttpClient client = IdempotentHttpClient.builder()
                .httpClient(answering)
                .sleeper(delay -> {})
                .retryBudget(RetryBudget.unlimited())
                .maxAttempts(1)
                .maxCircuitBreakers(1)
                .build();
        CircuitBreakerRegistry registry = client.circuitBreakers().orElseThrow();
        List<URI> hosts = List.of(URI.create("http://a.internal/orders"), URI.create("http://b.internal/orders"));
        int threads = 8;
        int callsEach = 2_000;
        CountDownLatch start = new CountDownLatch(1);
        List<CompletableFuture<Void>> callers = new ArrayList<>();
        try (ExecutorService pool = Executors.newFixedThreadPool(threads)) {
            for (int t = 0; t < threads; t++) {
                int first = t % 2;
                callers.add(CompletableFuture.runAsync(
                        () -> {
                            try {
                                start.await();
                                for (int i = 0; i < callsEach; i++) {
                                    client.send(
                                            post(hosts.get((first + i) % 2)), HttpResponse.BodyHandlers.discarding());
                                }
                            } catch (IOException | InterruptedException e) {
                                throw new IllegalStateException(e);
                            }
                        },
                        pool));
            }
            start.countDown();
            CompletableFuture.allOf(callers.toArray(CompletableFuture[]::new)).get(60, TimeUnit.SECONDS);
        }
        // (the registry is not read while the calls run: its listing is not one instant's, and may show a breaker
        // just removed beside the one created after it)
        assertThat(registry.getAllCircuitBreakers())
                .as("breakers left, bound 1")
                .hasSize(1);

        client.send(post(URI.create("http://c.internal/orders")), HttpResponse.BodyHandlers.discarding());
        status.set(503);
        for (int i = 0; i < 3; i++) {
            client.send(post(hosts.get(0)), HttpResponse.BodyHandlers.discarding());
        }
        assertThat(registry.getAllCircuitBreakers()).singleElement().satisfies(breaker -> {
            assertThat(breaker.getName()).isEqualTo("a.internal:80");
            assertThat(breaker.getMetrics().getNumberOfFailedCalls()).isEqualTo(3);
        });
    }

    private static HttpRequest post(URI uri) {
        return HttpRequest.newBuilder(uri)
                .POST(HttpRequest.BodyPublishers.ofString("{}"))
                .build();
    }

    /** @return a response whose body {@code handler} read from {@code body} */
    private static <T> HttpResponse<T> respond(
            HttpRequest request, HttpResponse.BodyHandler<T> handler, int status, String body) {
        HttpHeaders headers = HttpHeaders.of(Map.of(), (n, v) -> true);
        HttpResponse.BodySubscriber<T> subscriber = handler.apply(new HttpResponse.ResponseInfo() {
            @Override
            public int statusCode() {
                return status;
            }

            @Override
            public HttpHeaders headers() {
                return headers;
            }

            @Override
            public HttpClient.Version version() {
                return HttpClient.Version.HTTP_1_1;
            }
        });
        subscriber.onSubscribe(new Flow.Subscription() {
            @Override
            public void request(long n) {}

            @Override
            public void cancel() {}
        });
        subscriber.onNext(List.of(ByteBuffer.wrap(body.getBytes(StandardCharsets.UTF_8))));
        subscriber.onComplete();
        T value = subscriber.getBody().toCompletableFuture().join();
        return new StubResponse<>(status, request, headers, value);
    }

    private record StubResponse<T>(int statusCode, HttpRequest request, HttpHeaders headers, T body)
            implements HttpResponse<T> {
        @Override
        public Optional<HttpResponse<T>> previousResponse() {
            return Optional.empty();
        }

        @Override
        public Optional<SSLSession> sslSession() {
            return Optional.empty();
        }

        @Override
        public URI uri() {
            return request.uri();
        }

        @Override
        public HttpClient.Version version() {
            return HttpClient.Version.HTTP_1_1;
        }
    }

    /** An HttpClient whose subclass says how it answers {@link #sendAsync(HttpRequest, HttpResponse.BodyHandler)}. */
    private abstract static class StubHttpClient extends HttpClient {
        @Override
        public Optional<CookieHandler> cookieHandler() {
            return Optional.empty();
        }

        @Override
        public Optional<Duration> connectTimeout() {
            return Optional.empty();
        }

        @Override
        public Redirect followRedirects() {
            return Redirect.NEVER;
        }

        @Override
        public Optional<ProxySelector> proxy() {
            return Optional.empty();
        }

        @Override
        public SSLContext sslContext() {
            throw new UnsupportedOperationException();
        }

        @Override
        public SSLParameters sslParameters() {
            return new SSLParameters();
        }

        @Override
        public Optional<Authenticator> authenticator() {
            return Optional.empty();
        }

        @Override
        public Version version() {
            return Version.HTTP_1_1;
        }

        @Override
        public Optional<Executor> executor() {
            return Optional.empty();
        }

        @Override
        public <T> HttpResponse<T> send(HttpRequest request, HttpResponse.BodyHandler<T> handler) {
            throw new UnsupportedOperationException("the client sends asynchronously");
        }

        @Override
        public <T> CompletableFuture<HttpResponse<T>> sendAsync(
                HttpRequest request,
                HttpResponse.BodyHandler<T> handler,
                HttpResponse.PushPromiseHandler<T> pushPromiseHandler) {
            return sendAsync(request, handler);
        }
    }
}
