package dev.outbox.http.client.internal;

import dev.outbox.core.MessageIds;
import dev.outbox.core.internal.Durations;
import dev.outbox.core.retry.Backoff;
import dev.outbox.core.retry.RetryBudget;
import dev.outbox.http.client.CallInterruptedException;
import dev.outbox.http.client.CallResult;
import dev.outbox.http.client.CircuitOpenException;
import dev.outbox.http.client.Completion;
import dev.outbox.http.client.HttpCallException;
import dev.outbox.http.client.IdempotentHttpClient;
import dev.outbox.http.client.ServerErrorResponse;
import dev.outbox.http.client.Sleeper;
import dev.outbox.http.server.IdempotencyKey;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.github.resilience4j.circuitbreaker.CircuitBreakerRegistry;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpHeaders;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.ByteBuffer;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Flow;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicReference;
import java.util.random.RandomGenerator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** {@link IdempotentHttpClient} on {@link HttpClient}. */
public final class RetryingClient implements IdempotentHttpClient {
    private static final Logger LOG = LoggerFactory.getLogger(RetryingClient.class);
    private static final Set<String> IDEMPOTENT_METHODS = Set.of("GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE");

    /**
     * How long past a request's timeout an attempt whose headers have not arrived waits for the
     * {@link HttpClient}'s own timer to end it (see {@link #exchange}).
     */
    private static final Duration TIMER_GRACE = Duration.ofSeconds(1);

    private static final Duration LONGEST_WAIT = Duration.ofNanos(Long.MAX_VALUE);

    private final HttpClient http;
    private final Backoff backoff;
    private final int maxAttempts;
    private final RetryBudget budget;
    private final CircuitBreakerRegistry breakers;
    /**
     * The hosts that have a breaker, least recently called (an attempt started or ended) first;
     * guarded by itself.
     */
    private final LinkedHashMap<String, Boolean> breakerHosts = new LinkedHashMap<>(16, 0.75f, true);
    /**
     * The attempts in flight by host, for the hosts that have any: their breakers are not dropped
     * (see {@link #breakerOf}); guarded by {@link #breakerHosts}.
     */
    private final HashMap<String, Integer> attemptsInFlight = new HashMap<>();

    private final int maxBreakers;
    private final Duration attemptTimeout;
    private final Duration maxRetryAfter;
    private final Clock clock;
    private final Sleeper sleeper;
    private final RandomGenerator random;
    private final Set<String> keyedMethods;
    private final Targets targets;
    private final long maxBufferedBody;
    private final String log;

    public RetryingClient(
            HttpClient http,
            Backoff backoff,
            int maxAttempts,
            RetryBudget budget,
            CircuitBreakerRegistry breakers,
            int maxBreakers,
            Duration attemptTimeout,
            Duration maxRetryAfter,
            Clock clock,
            Sleeper sleeper,
            RandomGenerator random,
            Set<String> keyedMethods,
            Targets targets,
            long maxBufferedBody,
            String name) {
        this.http = http;
        this.backoff = backoff;
        this.maxAttempts = maxAttempts;
        this.budget = budget;
        this.breakers = breakers;
        this.maxBreakers = maxBreakers;
        this.attemptTimeout = attemptTimeout;
        this.maxRetryAfter = maxRetryAfter;
        this.clock = clock;
        this.sleeper = sleeper;
        this.random = random;
        this.keyedMethods = keyedMethods;
        this.targets = targets;
        this.maxBufferedBody = maxBufferedBody;
        this.log = "[idempotent-http-client " + name + "] ";
    }

    @Override
    public Optional<CircuitBreakerRegistry> circuitBreakers() {
        return Optional.ofNullable(breakers);
    }

    @Override
    public <T> CallResult<T> send(HttpRequest request, HttpResponse.BodyHandler<T> handler)
            throws IOException, InterruptedException {
        Objects.requireNonNull(request, "request may not be null");
        return run(request, handler, ownOrMinted(request), targets.honoursKey(request.uri()));
    }

    @Override
    public <T> CallResult<T> send(HttpRequest request, HttpResponse.BodyHandler<T> handler, String idempotencyKey)
            throws IOException, InterruptedException {
        Objects.requireNonNull(request, "request may not be null");
        Objects.requireNonNull(
                idempotencyKey, "idempotencyKey may not be null; use send(request, handler) to mint one");
        return run(request, handler, Key.given(idempotencyKey), targets.honoursKey(request.uri()));
    }

    @Override
    public <T> CallResult<T> sendKeyed(HttpRequest request, HttpResponse.BodyHandler<T> handler, String idempotencyKey)
            throws IOException, InterruptedException {
        Objects.requireNonNull(request, "request may not be null");
        return run(request, handler, idempotencyKey != null ? Key.given(idempotencyKey) : ownOrMinted(request), true);
    }

    /**
     * An operation's key and the header value that carries it.
     *
     * @param key the key, unquoted, as the caller gets it back; null for none
     * @param header the {@code Idempotency-Key} header value sent on every attempt
     */
    private record Key(String key, String header) {
        static final Key NONE = new Key(null, null);

        /** @throws IllegalArgumentException when the key cannot be sent (see {@link IdempotencyKey#quote}) */
        static Key given(String key) {
            return new Key(key, IdempotencyKey.quote(key));
        }
    }

    /**
     * @return the request's own key, sent on as the caller wrote it (a target that takes the value as
     *     opaque then sees the same key as from any other client sending it so); else a minted one for
     *     a keyed method; else none
     * @throws IllegalArgumentException when the request's own key is malformed
     */
    private Key ownOrMinted(HttpRequest request) {
        Optional<String> own = request.headers().firstValue(IdempotencyKey.HEADER);
        if (own.isPresent()) {
            return new Key(IdempotencyKey.parse(own.get()), own.get());
        }
        return keyedMethods.contains(request.method().toUpperCase(Locale.ROOT))
                ? Key.given(MessageIds.next().toString())
                : Key.NONE;
    }

    private <T> CallResult<T> run(
            HttpRequest original, HttpResponse.BodyHandler<T> handler, Key operation, boolean honoured)
            throws IOException, InterruptedException {
        Objects.requireNonNull(handler, "handler may not be null");
        String key = operation.key();
        HttpRequest.Builder copy =
                HttpRequest.newBuilder(original, (name, value) -> !name.equalsIgnoreCase(IdempotencyKey.HEADER));
        if (key != null) {
            copy.header(IdempotencyKey.HEADER, operation.header());
        }
        if (original.timeout().isEmpty()) {
            copy.timeout(attemptTimeout);
        }
        String method = original.method().toUpperCase(Locale.ROOT);
        // a keyed retry is safe only where the target honours the key; anything else may be repeated
        // only when the failure shows the request never left this client
        boolean mayRetry = (key != null && honoured) || IDEMPOTENT_METHODS.contains(method);
        if (mayRetry && maxAttempts > 1) {
            // every attempt must send the same bytes: a publisher that can be read once would send
            // nothing the second time, which the target takes for another request under the same key
            byte[] body = buffered(original, key, honoured, method);
            if (body != null) {
                copy.method(original.method(), HttpRequest.BodyPublishers.ofByteArray(body));
            }
        }
        HttpRequest request = copy.build();
        String host = hostOf(request.uri());

        int attempts = 0;
        HttpResponse<T> response = null;
        IOException failure = null;
        while (true) {
            // looked up for each attempt: the breaker that gives the permission records the outcome,
            // and is held in the registry until the attempt has ended (see breakerOf)
            CircuitBreaker breaker = breakers == null ? null : breakerOf(host);
            UnreadResponse unread;
            HttpHeaders headers;
            int status;
            boolean replayed;
            try {
                if (breaker != null && !breaker.tryAcquirePermission()) {
                    discard(response);
                    if (attempts > 0) {
                        // the retry taken from the budget before the wait is not sent
                        budget.releaseRetry();
                    }
                    throw new CircuitOpenException(
                            "The circuit breaker for " + host + " is " + breaker.getState()
                                    + " after repeated failures, so " + method + " " + request.uri() + " was not sent"
                                    + (attempts > 0 ? " again after " + attempts + " attempt(s)" : "")
                                    + ". It lets trial calls through after its wait in the open state; retry the operation later"
                                    + (key != null ? " with the same Idempotency-Key '" + key + "'" : "") + ".",
                            reported(failure),
                            host,
                            attempts,
                            key);
                }
                if (attempts == 0) {
                    // an operation the breaker refused sent nothing, and must not raise the retries allowed
                    budget.recordRequest();
                }
                attempts++;
                long start = System.nanoTime();
                try {
                    response = exchange(request, handler);
                    failure = null;
                } catch (IOException e) {
                    response = null;
                    failure = e;
                } catch (InterruptedException e) {
                    // a permission kept would leave a half-open breaker waiting for a trial call that never ends
                    if (breaker != null) {
                        breaker.releasePermission();
                    }
                    throw interrupted("sending", attempts, key, honoured, method, request.uri(), e);
                } catch (RuntimeException | Error e) {
                    if (breaker != null) {
                        breaker.releasePermission();
                    }
                    throw e;
                }
                long took = System.nanoTime() - start;
                // the server's answer: the response, or the status and headers of one the body handler failed on
                unread = failure instanceof UnreadResponse u ? u : null;
                headers = response != null ? response.headers() : unread != null ? unread.headers : null;
                status = response != null ? response.statusCode() : unread != null ? unread.status : 0;
                replayed = headers != null && replayed(headers);
                if (breaker != null) {
                    if (headers == null) {
                        breaker.onError(took, TimeUnit.NANOSECONDS, failure);
                    } else if (status >= 500 && !replayed) {
                        breaker.onError(took, TimeUnit.NANOSECONDS, new ServerErrorResponse(status));
                    } else {
                        breaker.onSuccess(took, TimeUnit.NANOSECONDS);
                    }
                }
            } finally {
                if (breaker != null) {
                    attemptEnded(host);
                }
            }
            if (headers != null && (replayed || !retryable(status, key, honoured))) {
                if (response == null) {
                    // a final answer comes again on a retry, and the handler would fail on it again
                    return end(null, failure, attempts, key, honoured, Completion.RESPONSE, method, request.uri());
                }
                return new CallResult<>(response, attempts, key, Completion.RESPONSE);
            }
            if (!mayRetry && !(headers == null && neverSent(failure))) {
                return end(response, failure, attempts, key, honoured, Completion.NOT_RETRIED, method, request.uri());
            }
            if (attempts >= maxAttempts) {
                return end(
                        response,
                        failure,
                        attempts,
                        key,
                        honoured,
                        Completion.ATTEMPTS_EXHAUSTED,
                        method,
                        request.uri());
            }
            Duration delay = jitter(attempts - 1);
            if (headers != null) {
                Duration asked =
                        RetryAfter.parse(headers.firstValue("Retry-After").orElse(null), clock);
                if (asked != null) {
                    if (asked.compareTo(maxRetryAfter) > 0) {
                        return end(
                                response,
                                failure,
                                attempts,
                                key,
                                honoured,
                                Completion.RETRY_AFTER_TOO_LONG,
                                method,
                                request.uri());
                    }
                    // the server's floor, plus the jitter, so that clients told the same moment spread out
                    delay = asked.plus(delay);
                }
            }
            if (!budget.tryAcquireRetry()) {
                return end(
                        response, failure, attempts, key, honoured, Completion.BUDGET_EXHAUSTED, method, request.uri());
            }
            if (LOG.isDebugEnabled()) {
                LOG.debug(
                        "{}retrying {} {} (key {}) in {} ms after attempt {}: {}",
                        log,
                        method,
                        request.uri(),
                        key,
                        delay.toMillis(),
                        attempts,
                        unread != null
                                ? unread.getMessage()
                                : failure != null ? failure.toString() : "status " + status);
            }
            discard(response);
            response = null;
            try {
                sleeper.sleep(delay);
            } catch (InterruptedException e) {
                throw interrupted("waiting to retry", attempts, key, honoured, method, request.uri(), e);
            }
        }
    }

    /**
     * Reads the request's body into memory before the first attempt of a call that may be retried, so
     * that every attempt sends the same bytes, also from a publisher that can be read once. The
     * publisher is read on a thread of its own, so that a stalled one holds the caller no longer than
     * an attempt would.
     *
     * @return the body, or null when the request has none
     * @throws IllegalArgumentException when it is longer than {@code maxBufferedBody}
     * @throws HttpCallException when the publisher failed, or did not finish within the request's
     *     timeout; nothing was sent
     * @throws CallInterruptedException when interrupted while reading; nothing was sent
     */
    private byte[] buffered(HttpRequest request, String key, boolean honoured, String method)
            throws HttpCallException, CallInterruptedException {
        HttpRequest.BodyPublisher publisher = request.bodyPublisher().orElse(null);
        if (publisher == null || publisher.contentLength() == 0) {
            return null;
        }
        long length = publisher.contentLength();
        if (length > maxBufferedBody) {
            throw bodyTooLarge(method, request.uri(), "is " + length + " bytes long", false);
        }
        BodyCollector collector = new BodyCollector(maxBufferedBody);
        Thread reader = Thread.ofVirtual().name("idempotent-http-client-body").start(() -> {
            try {
                publisher.subscribe(collector);
            } catch (RuntimeException e) {
                collector.body.completeExceptionally(e);
            }
        });
        Duration limit = request.timeout().orElse(attemptTimeout);
        try {
            return collector.body.get(nanos(limit), TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            stopReading(collector, reader);
            throw new HttpCallException(
                    log + method + " " + request.uri() + " was not sent: its body publisher did not finish within "
                            + Durations.format(limit)
                            + (request.timeout().isPresent() ? " (the request's timeout)" : " (attemptTimeout)")
                            + ". Give it a body that can be read in that time, or a longer timeout.",
                    e,
                    0,
                    key,
                    null);
        } catch (InterruptedException e) {
            stopReading(collector, reader);
            throw interrupted("reading the body of", 0, key, honoured, method, request.uri(), e);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof BodyCollector.TooLong) {
                throw bodyTooLarge(method, request.uri(), "is longer than " + maxBufferedBody + " bytes", true);
            }
            throw new HttpCallException(
                    log + method + " " + request.uri() + " was not sent: its body publisher failed: " + e.getCause(),
                    e.getCause(),
                    0,
                    key,
                    null);
        }
    }

    /**
     * Stops reading a body the caller no longer waits for: cancels the subscription and interrupts the
     * reading thread, which a publisher over a blocked stream ({@code ofInputStream} over a socket or a
     * pipe) would otherwise keep, with the stream, for as long as the stream stays silent.
     */
    private static void stopReading(BodyCollector collector, Thread reader) {
        collector.cancel();
        reader.interrupt();
    }

    private IllegalArgumentException bodyTooLarge(String method, URI uri, String howLong, boolean partlyRead) {
        return new IllegalArgumentException(log + method + " " + uri + " was not sent: its body " + howLong
                + ", more than maxBufferedBody (" + maxBufferedBody + " bytes). The client reads the body of a call"
                + " that may be retried into memory before the first attempt, so that every attempt sends the same"
                + " bytes. Raise maxBufferedBody(...) on the client's builder above the longest body you send (at most "
                + IdempotentHttpClient.Builder.MAX_BUFFERED_BODY + " bytes), or send such a body with a client built"
                + " with maxAttempts(1), which sends it once and never holds it"
                + (partlyRead ? ". Its publisher has been read up to the limit: build the request anew to send it" : "")
                + ".");
    }

    /**
     * Collects a request body publisher's bytes, at most {@code max}; {@link #body} completes with
     * them, or exceptionally with the publisher's error or {@link TooLong}.
     */
    private static final class BodyCollector implements Flow.Subscriber<ByteBuffer> {
        /** The body was longer than the limit. */
        static final class TooLong extends RuntimeException {
            TooLong() {
                super(null, null, false, false);
            }
        }

        final CompletableFuture<byte[]> body = new CompletableFuture<>();
        private final long max;
        private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        private final AtomicReference<Flow.Subscription> subscription = new AtomicReference<>();

        BodyCollector(long max) {
            this.max = max;
        }

        @Override
        public void onSubscribe(Flow.Subscription s) {
            subscription.set(s);
            if (body.isDone()) {
                s.cancel(); // cancelled before the publisher subscribed
            } else {
                s.request(Long.MAX_VALUE);
            }
        }

        @Override
        public void onNext(ByteBuffer item) {
            if (body.isDone()) {
                return;
            }
            if (item.remaining() > max - bytes.size()) {
                body.completeExceptionally(new TooLong());
                cancelSubscription();
                return;
            }
            byte[] chunk = new byte[item.remaining()];
            item.get(chunk);
            bytes.write(chunk, 0, chunk.length);
        }

        @Override
        public void onError(Throwable throwable) {
            body.completeExceptionally(throwable);
        }

        @Override
        public void onComplete() {
            body.complete(bytes.toByteArray());
        }

        /** Stops reading: the caller no longer waits for the body. */
        void cancel() {
            body.cancel(false);
            cancelSubscription();
        }

        private void cancelSubscription() {
            Flow.Subscription s = subscription.get();
            if (s != null) {
                s.cancel();
            }
        }
    }

    /** The caller's thread was interrupted: the key goes with the exception, so that the operation can be retried. */
    private static CallInterruptedException interrupted(
            String doing,
            int attempts,
            String key,
            boolean honoured,
            String method,
            URI uri,
            InterruptedException cause) {
        String advice;
        if (attempts == 0) {
            advice = "; nothing was sent";
        } else if (key == null) {
            advice = "";
        } else if (honoured) {
            advice = "; the operation may have run: retry it later with the same Idempotency-Key '" + key
                    + "' to learn its outcome";
        } else {
            advice = "; the operation may have run, and the target is not declared as honouring Idempotency-Key"
                    + " (idempotentTargets): a retry, even with the same key '" + key + "', may run it again";
        }
        CallInterruptedException e = new CallInterruptedException(
                "Interrupted while " + doing + " " + method + " " + uri + " after " + attempts + " attempt(s)" + advice,
                attempts,
                key);
        e.initCause(cause);
        return e;
    }

    /**
     * Whether a failure proves that no byte of the request reached the server: the connection was
     * refused, or could not be opened in time.
     */
    static boolean neverSent(Throwable failure) {
        for (Throwable t = failure; t != null; t = t.getCause()) {
            if (t instanceof ConnectException || t instanceof HttpConnectTimeoutException) {
                return true;
            }
        }
        return false;
    }

    private static boolean replayed(HttpHeaders headers) {
        return headers.firstValue(IdempotencyKey.REPLAYED_HEADER)
                .map("true"::equalsIgnoreCase)
                .orElse(false);
    }

    /** Closes the body of a response that will not be handed to the caller, so its connection is freed. */
    private void discard(HttpResponse<?> response) {
        if (response == null) {
            return;
        }
        Object body = response.body();
        try {
            if (body instanceof AutoCloseable closeable) {
                closeable.close();
            } else if (body instanceof Flow.Publisher<?> publisher) {
                publisher.subscribe(new Flow.Subscriber<Object>() {
                    @Override
                    public void onSubscribe(Flow.Subscription subscription) {
                        subscription.cancel();
                    }

                    @Override
                    public void onNext(Object item) {}

                    @Override
                    public void onError(Throwable throwable) {}

                    @Override
                    public void onComplete() {}
                });
            }
        } catch (Exception e) {
            LOG.debug("{}closing the body of a discarded response failed: {}", log, e.toString());
        }
    }

    private Duration jitter(int retry) {
        if (random == null) {
            return backoff.delay(retry, ThreadLocalRandom.current());
        }
        synchronized (random) {
            return backoff.delay(retry, random);
        }
    }

    /**
     * @param honoured whether the target is declared as honouring the key
     * @return whether the status asks for a retry: 409 only from a target that honours the key, where
     *     it means that the first request with the key is still in flight; from any other target it is
     *     the server's own answer, which a retry would only repeat
     */
    private static boolean retryable(int status, String key, boolean honoured) {
        if (status >= 500) {
            return status != 501 && status != 505;
        }
        if (status == 429 || status == 408 || status == 425) {
            return true; // too many, timed out before processing, too early: the server did not act on it
        }
        return status == 409 && key != null && honoured;
    }

    private <T> CallResult<T> end(
            HttpResponse<T> response,
            IOException failure,
            int attempts,
            String key,
            boolean honoured,
            Completion completion,
            String method,
            URI uri)
            throws HttpCallException {
        if (response != null) {
            return new CallResult<>(response, attempts, key, completion);
        }
        // the key tells the outcome only where the target honours it; elsewhere a retry may run the call twice
        String advice;
        if (key == null) {
            advice = "";
        } else if (honoured) {
            advice = "; retry later with the same Idempotency-Key '" + key + "' to learn the outcome";
        } else {
            advice = "; the target is not declared as honouring Idempotency-Key (idempotentTargets):"
                    + " a retry, even with the same key '" + key + "', may run it again";
        }
        String why = switch (completion) {
            case NOT_RETRIED ->
                " and was not retried: a " + method
                        + (key == null
                                ? " without an Idempotency-Key may already have taken effect"
                                : " to a target not declared as honouring Idempotency-Key may already have"
                                        + " taken effect, and a retry, even with the same key '" + key
                                        + "', may run it again")
                        + ". Declare the target in idempotentTargets(...) (or use sendKeyed) if it honours the key";
            case ATTEMPTS_EXHAUSTED -> " after " + attempts + " attempts (maxAttempts)" + advice;
            case BUDGET_EXHAUSTED ->
                " after " + attempts + " attempt(s); the retry budget is spent because many calls are"
                        + " failing; the target is likely down or overloaded" + advice;
            case RESPONSE ->
                " after " + attempts + " attempt(s), on a final response, which a retry would get again" + advice;
            case RETRY_AFTER_TOO_LONG ->
                " after " + attempts + " attempt(s): the server asked to retry after more than maxRetryAfter ("
                        + Durations.format(maxRetryAfter) + ")" + advice;
        };
        String last = failure instanceof UnreadResponse unread ? unread.getMessage() : String.valueOf(failure);
        throw new HttpCallException(
                log + method + " " + uri + " failed" + why + ". Last error: " + last,
                reported(failure),
                attempts,
                key,
                completion,
                failure instanceof UnreadResponse unread ? unread.status : 0);
    }

    /** @return the failure as the caller gets it: for a response the body handler failed on, the handler's exception */
    private static Throwable reported(IOException failure) {
        return failure instanceof UnreadResponse unread ? unread.getCause() : failure;
    }

    /**
     * The host's breaker, for one attempt: the host counts as having an attempt in flight until
     * {@link #attemptEnded} is called for it, which the caller must do exactly once, after the
     * attempt's outcome has been recorded (or its permission released or refused).
     *
     * <p>The registry keeps at most {@code maxBreakers}: past it, the breaker of the host called least
     * recently (an attempt started or ended) among those with no attempt in flight goes first,
     * whatever its state, so that a client that calls ever new hosts (webhook targets, say) does not
     * keep a breaker for each of them for good. A host with an attempt in flight keeps its breaker, so
     * that the attempt's outcome (a failure, a half-open breaker's trial) is recorded in the breaker
     * its next call gets, and an open breaker is not dropped under it. So while more hosts than
     * {@code maxBreakers} have attempts in flight at once, the registry holds a breaker for each of
     * them, past the bound, for a while: it shrinks back to the bound as those attempts end (see
     * {@link #attemptEnded}). Between the attempts of a call (its backoff) the host holds nothing.
     *
     * <p>The registry and the in-flight counts are changed under the same lock as the list of hosts: a
     * breaker removed or created after the lock was let go could be created again for a host just
     * dropped (one breaker more than the bound, that no later call removes) or removed just after it
     * was handed out (its failures lost to the host's next calls).
     */
    private CircuitBreaker breakerOf(String host) {
        List<String> dropped;
        int kept;
        CircuitBreaker breaker;
        synchronized (breakerHosts) {
            breakerHosts.put(host, Boolean.TRUE);
            dropped = dropIdleBeyondBound(host);
            kept = breakerHosts.size();
            breaker = breakers.circuitBreaker(host);
            attemptsInFlight.merge(host, 1, Integer::sum);
        }
        logDropped(dropped, kept);
        if (kept > maxBreakers) {
            LOG.debug(
                    "{}keeps {} circuit breakers for now, more than maxCircuitBreakers ({}): each of their hosts has an"
                            + " attempt in flight, so none is dropped; the idle ones past the bound are dropped as"
                            + " those attempts end",
                    log,
                    kept,
                    maxBreakers);
        }
        return breaker;
    }

    /**
     * Ends the hold {@link #breakerOf} took on the host's breaker for one attempt. The host counts as
     * just called, so its breaker, which has just recorded the attempt's outcome, stays; the breakers
     * of other idle hosts past the bound, kept while this attempt was in flight, are dropped.
     */
    private void attemptEnded(String host) {
        List<String> dropped;
        int kept;
        synchronized (breakerHosts) {
            attemptsInFlight.computeIfPresent(host, (h, n) -> n > 1 ? n - 1 : null);
            // in an access-ordered map, replacing the value makes the host the most recently called
            breakerHosts.replace(host, Boolean.TRUE);
            dropped = dropIdleBeyondBound(host);
            kept = breakerHosts.size();
        }
        logDropped(dropped, kept);
    }

    /**
     * Drops the breakers of hosts with no attempt in flight, other than {@code keep}, least recently
     * called first, until the registry is back at the bound or no such host is left. Called holding
     * the lock on {@link #breakerHosts}.
     *
     * @return the hosts dropped
     */
    private List<String> dropIdleBeyondBound(String keep) {
        if (breakerHosts.size() <= maxBreakers) {
            return List.of();
        }
        List<String> dropped = new ArrayList<>();
        for (var eldest = breakerHosts.keySet().iterator(); eldest.hasNext() && breakerHosts.size() > maxBreakers; ) {
            String host = eldest.next();
            if (!host.equals(keep) && !attemptsInFlight.containsKey(host)) {
                eldest.remove();
                breakers.remove(host);
                dropped.add(host);
            }
        }
        return dropped;
    }

    private void logDropped(List<String> dropped, int kept) {
        for (String host : dropped) {
            LOG.debug(
                    "{}dropped the circuit breaker of {}, the least recently called host with no attempt in flight"
                            + " past maxCircuitBreakers ({}); {} kept",
                    log,
                    host,
                    maxBreakers,
                    kept);
        }
    }

    private static String hostOf(URI uri) {
        // a host that java.net.URI does not parse (an underscore, say) keeps its own breaker by authority
        return uri.getHost() != null ? uri.getHost() + ":" + Targets.portOf(uri) : uri.getRawAuthority();
    }

    /**
     * An attempt whose response the body handler failed on (a mapping that cannot parse a gateway's
     * HTML error page, say): the server answered, so the outcome follows the response's status and
     * headers, as for a response the handler read; the caller gets the handler's exception, the cause.
     */
    static final class UnreadResponse extends IOException {
        final int status;
        final transient HttpHeaders headers;

        UnreadResponse(HttpResponse.ResponseInfo info, RuntimeException cause) {
            super(
                    "the body handler failed on the HTTP " + info.statusCode() + " response"
                            + info.headers()
                                    .firstValue("Content-Type")
                                    .map(type -> " (Content-Type " + type + ")")
                                    .orElse("")
                            + ": " + cause
                            + "; make the handler accept every response the target may send, error pages"
                            + " included (check the status or the Content-Type before parsing)",
                    cause);
            this.status = info.statusCode();
            this.headers = info.headers();
        }
    }

    /**
     * Sends one attempt and waits for its response, body included, at most the request's timeout.
     *
     * <p>Until the headers arrive, the {@link HttpClient}'s own timer for the request's timeout, set
     * going by {@code sendAsync} a moment after this wait starts, ends the attempt: its exception
     * tells a connection that could not be opened in time ({@link HttpConnectTimeoutException},
     * nothing sent) from a request that went unanswered, which this wait cannot tell apart. So the
     * wait gives that timer {@link #TIMER_GRACE} more before it ends the attempt itself. Once the headers arrived, that timer has
     * stopped, and a body that stalls would hold the attempt for as long as the server holds it: the
     * wait ends it at the timeout.
     *
     * @throws UnreadResponse when the body handler threw a {@link RuntimeException} on the response
     * @throws RuntimeException when one ended the attempt before the response headers arrived
     */
    private <T> HttpResponse<T> exchange(HttpRequest request, HttpResponse.BodyHandler<T> handler)
            throws IOException, InterruptedException {
        AtomicReference<HttpResponse.ResponseInfo> answered = new AtomicReference<>();
        CompletableFuture<HttpResponse<T>> pending = http.sendAsync(request, info -> {
            answered.set(info);
            return handler.apply(info);
        });
        try {
            return outcome(request, pending, answered);
        } catch (RuntimeException e) {
            HttpResponse.ResponseInfo info = answered.get();
            if (info == null) {
                throw e;
            }
            // the handler runs once the headers are in, and the HttpClient reports I/O errors as
            // IOException: a RuntimeException after the headers is the handler's (or its subscriber's)
            throw new UnreadResponse(info, e);
        }
    }

    /** @see #exchange */
    private <T> HttpResponse<T> outcome(
            HttpRequest request,
            CompletableFuture<HttpResponse<T>> pending,
            AtomicReference<HttpResponse.ResponseInfo> answered)
            throws IOException, InterruptedException {
        Duration limit = request.timeout().orElse(attemptTimeout);
        HttpResponse<T> response = await(pending, nanos(limit));
        if (response == null && answered.get() == null) {
            response = await(pending, nanos(TIMER_GRACE));
        }
        if (response != null) {
            return response;
        }
        HttpTimeoutException timeout = new HttpTimeoutException("no complete response to " + request.method() + " "
                + request.uri() + " within " + Durations.format(limit));
        if (pending.cancel(true)) {
            throw timeout;
        }
        // it completed after the wait and before the cancel: its outcome is the attempt's, and a
        // response dropped here would hold its connection with nobody to close its body
        return switch (pending.state()) {
            case SUCCESS -> pending.resultNow();
            case FAILED -> throw failure(pending.exceptionNow());
            default -> throw timeout;
        };
    }

    /**
     * @return the response, or null when it is not complete within {@code nanos}
     * @throws IOException the attempt's failure
     * @throws InterruptedException when interrupted while waiting; the attempt is cancelled
     */
    private static <T> HttpResponse<T> await(CompletableFuture<HttpResponse<T>> pending, long nanos)
            throws IOException, InterruptedException {
        try {
            return pending.get(nanos, TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            return null;
        } catch (InterruptedException e) {
            pending.cancel(true);
            throw e;
        } catch (ExecutionException e) {
            throw failure(e.getCause());
        }
    }

    /**
     * @return an attempt's failure as an {@link IOException}
     * @throws RuntimeException when it is one (thrown by the body handler, say)
     * @throws Error when it is one
     */
    private static IOException failure(Throwable cause) {
        if (cause instanceof IOException io) {
            return io;
        }
        if (cause instanceof RuntimeException runtime) {
            throw runtime;
        }
        if (cause instanceof Error error) {
            throw error;
        }
        return new IOException(cause);
    }

    /** @return {@code d} in nanoseconds, at most {@link Long#MAX_VALUE} (292 years): a request's own timeout may be longer */
    private static long nanos(Duration d) {
        return d.compareTo(LONGEST_WAIT) >= 0 ? Long.MAX_VALUE : d.toNanos();
    }
}
