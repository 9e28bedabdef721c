package dev.outbox.http.client;

import dev.outbox.core.internal.Breakers;
import dev.outbox.core.internal.Checks;
import dev.outbox.core.internal.Durations;
import dev.outbox.core.retry.Backoff;
import dev.outbox.core.retry.RetryBudget;
import dev.outbox.http.client.internal.RetryingClient;
import dev.outbox.http.client.internal.Targets;
import io.github.resilience4j.circuitbreaker.CircuitBreakerConfig;
import io.github.resilience4j.circuitbreaker.CircuitBreakerRegistry;
import java.io.IOException;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Clock;
import java.time.Duration;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.random.RandomGenerator;

/**
 * An HTTP client that retries safely (guarantee G6 on the calling side, G5 on the called side):
 * one {@code Idempotency-Key} per logical operation, reused on every attempt, so that a server
 * that honours the key runs the operation once however many attempts reach it.
 *
 * <pre>{@code
 * IdempotentHttpClient client = IdempotentHttpClient.builder()
 *     .idempotentTargets("orders.internal", "https://payments.internal/v1")  // they honour the key
 *     .build();
 * CallResult<String> result = client.send(
 *     HttpRequest.newBuilder(URI.create("http://orders.internal/orders"))
 *         .POST(BodyPublishers.ofString(json)).header("Content-Type", "application/json").build(),
 *     BodyHandlers.ofString());
 * result.status(); result.attempts(); result.idempotencyKey();
 * }</pre>
 *
 * <p><b>Keys.</b> A request that already carries an {@code Idempotency-Key} keeps it (the caller's
 * own key, e.g. stored with the operation so it survives a restart): its value is checked as the
 * server's {@link dev.outbox.http.server.IdempotencyKey#parse parser} checks it and sent exactly as
 * written, bare ({@code pay-42}) or quoted ({@code "pay-42"}); this project's server takes both for
 * the same key. Otherwise a request whose method is in {@link Builder#keyedMethods} (default POST
 * and PATCH) gets a fresh UUIDv7, sent as a quoted Structured Field string as the IETF draft
 * specifies, the same on every attempt; so is a key passed to {@link #send(HttpRequest,
 * HttpResponse.BodyHandler, String)} or {@link #sendKeyed}.
 *
 * <p><b>What is retried.</b> A key is safe to retry on only if the target honours it; the client
 * cannot tell, so it must be told ({@link Builder#idempotentTargets} for the whole client, or
 * {@link #sendKeyed} per call). Retried are connection failures and timeouts (any {@link
 * IOException}), 5xx except 501 and 505, 408, 425, 429, and 409 on a keyed request to a declared
 * target (there 409 is "the first request with this key is still in flight"; from a target not
 * declared it is the server's own answer, and final), for:
 *
 * <ul>
 *   <li>requests with an idempotent method (GET, HEAD, PUT, DELETE, OPTIONS, TRACE);
 *   <li>requests with a key to a target declared as honouring it.
 * </ul>
 *
 * Any other request (a POST or PATCH to a target not declared) is retried only when the failure
 * proves that it never reached the server: the connection was refused or could not be opened in
 * time, before any byte was sent. After a read timeout, a reset or any response, it is sent
 * exactly once, because a server that ignores the key may already have acted on it. A response
 * marked {@code Idempotent-Replayed: true} is the server's stored answer and always final.
 *
 * <p><b>How long it waits.</b> Before retry {@code n} (0 for the first) it waits {@code
 * backoff.delay(n)}, drawn uniformly from {@code [0, min(cap, base * 2^n)]} (full jitter). When the
 * response carries {@code Retry-After} (seconds or an HTTP date) it waits that long plus the
 * jitter, so that clients told the same {@code Retry-After} do not come back in lockstep. If the
 * server asks for more than {@link
 * Builder#maxRetryAfter}, the client does not retry earlier than asked; it stops and returns that
 * response ({@link Completion#RETRY_AFTER_TOO_LONG}).
 *
 * <p><b>What bounds it.</b> At most {@link Builder#maxAttempts} attempts per operation; a {@link
 * RetryBudget} shared by all operations of this client ({@code recordRequest()} per operation,
 * {@code tryAcquireRetry()} before each retry), so that when a dependency fails for everyone,
 * retries add at most the budget's ratio to the load; and a circuit breaker per host and port,
 * which fails fast with {@link CircuitOpenException} while open. An operation the breaker refuses
 * sent nothing and is not recorded in the budget, and a retry it refuses after its wait gives the
 * retry it took back to the budget.
 *
 * <p><b>A body handler that fails.</b> When the body handler throws a {@link RuntimeException} on a
 * response (a mapping that cannot parse a gateway's HTML 502 or 503 page, say), the server has
 * answered, so the attempt ends as that response would have: its status decides the retry, its
 * {@code Retry-After} the wait, and the breaker counts a 5xx as a failure. The operation ends with
 * an {@link HttpCallException} (the handler's exception its cause) when that was its last attempt,
 * or when the response is final (a retry would get the same answer). An {@link Error} it throws
 * reaches the caller as it is.
 *
 * <p>Results: the last response ({@link CallResult}, also for a final 503 once retries are spent,
 * with the reason in {@link CallResult#completion()}), or an {@link HttpCallException} carrying the
 * attempts made and the key when no response came or the body handler failed on the last one. The
 * responses of attempts that were retried are closed (their body's stream, or its publisher
 * cancelled), so no connection leaks.
 *
 * <p><b>Request bodies.</b> Every attempt of an operation sends the same bytes, or the target would
 * take a retry for another request under the same key (422). So the body of a call that may be
 * retried after it was sent (an idempotent method, or a keyed request to a declared target, with
 * {@link Builder#maxAttempts} above 1) is read once, before the first attempt, into memory, and each
 * attempt sends those bytes: any publisher works, also one that can be read once ({@code
 * ofInputStream} over one stream). A body longer than {@link Builder#maxBufferedBody} (default 16 MiB)
 * fails the call with {@link IllegalArgumentException} before anything is sent. Any other call sends
 * the request's own publisher: once, or again only when the connection could not be opened, before
 * the publisher was read.
 *
 * <p>Thread-safe; share one per process and target.
 */
public interface IdempotentHttpClient {

    /** @return a builder with the defaults documented on each setter */
    static Builder builder() {
        return new Builder();
    }

    /**
     * Sends one logical operation, retrying it as described on the class.
     *
     * @param request the request; its {@code Idempotency-Key} header, if any, is kept
     * @param handler the body handler, applied to every attempt's response; when it throws a {@link
     *     RuntimeException}, the attempt ends as its response would have (see the class)
     * @param <T> the body type
     * @return the last response, the attempts and the key
     * @throws CircuitOpenException when the host's circuit breaker refuses the call (before the first
     *     attempt or before a retry)
     * @throws HttpCallException when the last attempt failed with an I/O error, its cause that error;
     *     or when the body handler failed on the last response, its cause the handler's exception.
     *     Either way it carries the attempts and the operation's key, also a minted one. Also, with
     *     no attempt made, when the body of a call that may be retried could not be read (its
     *     publisher failed, or did not finish within the attempt's timeout)
     * @throws InterruptedException when interrupted while reading the body, sending or waiting; no
     *     further attempt is made. It is a {@link CallInterruptedException}, which carries the
     *     operation's key (also a minted one): a later retry of the operation sends that key, which a
     *     target that honours it answers with the first outcome
     * @throws IllegalArgumentException when the request's own {@code Idempotency-Key} is malformed,
     *     or the body of a call that may be retried is longer than {@link Builder#maxBufferedBody};
     *     nothing was sent
     */
    <T> CallResult<T> send(HttpRequest request, HttpResponse.BodyHandler<T> handler)
            throws IOException, InterruptedException;

    /**
     * Sends one logical operation with the caller's key, replacing any key on the request.
     *
     * @param request the request
     * @param handler the body handler
     * @param idempotencyKey the key, unquoted; reuse it to retry the operation later (e.g. after a
     *     restart) and get its first response
     * @param <T> the body type
     * @return see {@link #send(HttpRequest, HttpResponse.BodyHandler)}
     * @throws IOException see {@link #send(HttpRequest, HttpResponse.BodyHandler)}
     * @throws InterruptedException see {@link #send(HttpRequest, HttpResponse.BodyHandler)}
     * @throws IllegalArgumentException when the key is empty, longer than 255 characters or not
     *     printable ASCII, or the body of a call that may be retried is longer than {@link
     *     Builder#maxBufferedBody}; nothing was sent
     */
    <T> CallResult<T> send(HttpRequest request, HttpResponse.BodyHandler<T> handler, String idempotencyKey)
            throws IOException, InterruptedException;

    /**
     * Sends one logical operation to a target that the caller vouches honours {@code
     * Idempotency-Key}, whether or not it is among {@link Builder#idempotentTargets}: a request with
     * a key is retried as described on the class.
     *
     * @param request the request
     * @param handler the body handler
     * @param idempotencyKey the key, unquoted; or null to keep the request's own key or mint one
     * @param <T> the body type
     * @return see {@link #send(HttpRequest, HttpResponse.BodyHandler)}
     * @throws IOException see {@link #send(HttpRequest, HttpResponse.BodyHandler)}
     * @throws InterruptedException see {@link #send(HttpRequest, HttpResponse.BodyHandler)}
     * @throws IllegalArgumentException when the key is empty, longer than 255 characters or not
     *     printable ASCII, or the body of a call that may be retried is longer than {@link
     *     Builder#maxBufferedBody}; nothing was sent
     */
    <T> CallResult<T> sendKeyed(HttpRequest request, HttpResponse.BodyHandler<T> handler, String idempotencyKey)
            throws IOException, InterruptedException;

    /**
     * @return the circuit breakers by {@code host:port}, e.g. to bind them to Micrometer with
     *     resilience4j-micrometer; empty when breakers are off
     */
    Optional<CircuitBreakerRegistry> circuitBreakers();

    /**
     * Builds an {@link IdempotentHttpClient}. Setters check their own argument at once ({@link
     * NullPointerException} for null, {@link IllegalArgumentException} for a bad value); {@link
     * #build()} checks the combination ({@link IllegalStateException}). Not thread-safe; the built
     * client is.
     */
    final class Builder {
        /** Default {@link #backoff(Backoff)}: 100 ms doubling up to 10 s, full jitter. */
        public static final Backoff DEFAULT_BACKOFF = Backoff.of(Duration.ofMillis(100), Duration.ofSeconds(10));

        /** Default {@link #maxAttempts(int)}. */
        public static final int DEFAULT_MAX_ATTEMPTS = 5;

        /** Largest {@link #maxAttempts(int)}. */
        public static final int MAX_ATTEMPTS = 100;

        /** Default {@link #attemptTimeout(Duration)}: 10 s. */
        public static final Duration DEFAULT_ATTEMPT_TIMEOUT = Duration.ofSeconds(10);

        /** Largest {@link #attemptTimeout(Duration)}: 1 h. */
        public static final Duration MAX_ATTEMPT_TIMEOUT = Duration.ofHours(1);

        /** Default {@link #maxRetryAfter(Duration)}: 30 s. */
        public static final Duration DEFAULT_MAX_RETRY_AFTER = Duration.ofSeconds(30);

        /** Default {@link #keyedMethods(String...)}: the two methods HTTP does not define as idempotent. */
        public static final Set<String> DEFAULT_KEYED_METHODS = Set.of("POST", "PATCH");

        /** Default {@link #maxCircuitBreakers(int)}: 1,000 hosts. */
        public static final int DEFAULT_MAX_CIRCUIT_BREAKERS = 1_000;

        /** Default {@link #maxBufferedBody(long)}: 16 MiB. */
        public static final long DEFAULT_MAX_BUFFERED_BODY = 16L * 1024 * 1024;

        /** Largest {@link #maxBufferedBody(long)}: 1 GiB. */
        public static final long MAX_BUFFERED_BODY = 1L << 30;

        /** Default {@link #name(String)}. */
        public static final String DEFAULT_NAME = "default";

        private HttpClient httpClient;
        private Backoff backoff = DEFAULT_BACKOFF;
        private int maxAttempts = DEFAULT_MAX_ATTEMPTS;
        private RetryBudget retryBudget;
        private CircuitBreakerConfig circuitBreakerConfig;
        private boolean noCircuitBreaker;
        private int maxCircuitBreakers = DEFAULT_MAX_CIRCUIT_BREAKERS;
        private Duration attemptTimeout = DEFAULT_ATTEMPT_TIMEOUT;
        private Duration maxRetryAfter = DEFAULT_MAX_RETRY_AFTER;
        private Clock clock = Clock.systemUTC();
        private Sleeper sleeper = Sleeper.threadSleep();
        private RandomGenerator random;
        private Set<String> keyedMethods = DEFAULT_KEYED_METHODS;
        private List<String> idempotentTargets = List.of();
        private long maxBufferedBody = DEFAULT_MAX_BUFFERED_BODY;
        private String name = DEFAULT_NAME;

        private Builder() {}

        /**
         * @param httpClient the underlying client; default {@code HttpClient.newBuilder()
         *     .connectTimeout(attemptTimeout).build()}
         * @return this builder
         * @throws NullPointerException when it is null
         */
        public Builder httpClient(HttpClient httpClient) {
            this.httpClient = Objects.requireNonNull(httpClient, "httpClient may not be null");
            return this;
        }

        /**
         * @param backoff the delays between attempts; default {@link #DEFAULT_BACKOFF} (100 ms doubling
         *     up to 10 s, full jitter)
         * @return this builder
         * @throws NullPointerException when it is null
         */
        public Builder backoff(Backoff backoff) {
            this.backoff = Objects.requireNonNull(backoff, "backoff may not be null");
            return this;
        }

        /**
         * @param maxAttempts attempts per operation, the first included; default {@value
         *     #DEFAULT_MAX_ATTEMPTS}; 1 disables retries
         * @return this builder
         * @throws IllegalArgumentException when it is not between 1 and {@value #MAX_ATTEMPTS}
         */
        public Builder maxAttempts(int maxAttempts) {
            this.maxAttempts = Checks.requireBetween(
                    maxAttempts, 1, MAX_ATTEMPTS, "maxAttempts", "; the default is " + DEFAULT_MAX_ATTEMPTS);
            return this;
        }

        /**
         * @param retryBudget the budget shared by this client's operations; default {@code
         *     RetryBudget.of(0.1, 10, 10 s)}: retries up to 10 % of operations plus 10 per second
         *     over a 10 s window. {@link RetryBudget#unlimited()} turns it off (for comparisons only).
         * @return this builder
         * @throws NullPointerException when it is null
         */
        public Builder retryBudget(RetryBudget retryBudget) {
            this.retryBudget = Objects.requireNonNull(retryBudget, "retryBudget may not be null");
            return this;
        }

        /**
         * @param config the configuration of each host's breaker; default: count-based window of the
         *     last 20 calls, judged from the 5th call, opens at 50 % failures (so 5 failures in a row
         *     from a fresh start open it), stays open 10 s, then lets 3 trial calls through and closes
         *     if fewer than half fail. Failures are I/O errors and 5xx responses (also those the body
         *     handler failed on); everything else counts as a success. The default uses {@link
         *     #clock}. Not together with {@link #noCircuitBreaker()}. A config of your own judges what
         *     the client records with {@code onError}: an I/O error as the {@link IOException} the
         *     attempt failed with, a 5xx that is not a replay as a {@link ServerErrorResponse}, also an
         *     {@code IOException}, so {@code recordExceptions(IOException.class)} counts both (an
         *     exception a config neither records nor ignores counts as a success).
         * @return this builder
         * @throws NullPointerException when it is null
         */
        public Builder circuitBreakerConfig(CircuitBreakerConfig config) {
            this.circuitBreakerConfig = Objects.requireNonNull(config, "config may not be null");
            return this;
        }

        /**
         * @param maxCircuitBreakers how many hosts keep a circuit breaker at once; default {@link
         *     #DEFAULT_MAX_CIRCUIT_BREAKERS}. Past it, the breaker of the host called least recently
         *     among those with no attempt in flight is dropped, whatever its state, and that host
         *     starts afresh with a closed breaker when it is called again. A host with an attempt in
         *     flight keeps its breaker, so that the attempt's outcome counts for the host's next
         *     calls: while more hosts than this have attempts in flight at once, the client keeps a
         *     breaker for each of them, and drops the idle ones past the bound as those attempts end
         *     (a host whose attempt just ended counts as just called). Raise it when this client calls
         *     more hosts than that in turn and each must keep its breaker.
         * @return this builder
         * @throws IllegalArgumentException when it is below 1
         */
        public Builder maxCircuitBreakers(int maxCircuitBreakers) {
            if (maxCircuitBreakers < 1) {
                throw new IllegalArgumentException(
                        "maxCircuitBreakers must be at least 1 (hosts that keep a breaker at once), got "
                                + maxCircuitBreakers);
            }
            this.maxCircuitBreakers = maxCircuitBreakers;
            return this;
        }

        /**
         * Turns the circuit breakers off (for comparisons, or when a mesh already breaks circuits). Not
         * together with {@link #circuitBreakerConfig}.
         *
         * @return this builder
         */
        public Builder noCircuitBreaker() {
            this.noCircuitBreaker = true;
            return this;
        }

        /**
         * @param attemptTimeout how long one attempt may take until its response is complete, as the
         *     body handler reads it (the whole body for {@code ofString()}, the headers for {@code
         *     ofInputStream()}); default {@link #DEFAULT_ATTEMPT_TIMEOUT} (10 s), at most {@link
         *     #MAX_ATTEMPT_TIMEOUT} (1 h). A request with its own {@code timeout} keeps it, with the
         *     same meaning. Until the response headers arrive, the {@link HttpClient}'s own timer for
         *     that timeout ends the attempt, telling a connection that could not be opened in time
         *     (nothing sent, so retried as described on the class) from a request that went
         *     unanswered; should that timer be late, the client ends the attempt itself 1 s after the
         *     timeout.
         * @return this builder
         * @throws NullPointerException when it is null
         * @throws IllegalArgumentException when it is not positive, or longer than {@link
         *     #MAX_ATTEMPT_TIMEOUT}
         */
        public Builder attemptTimeout(Duration attemptTimeout) {
            String defaultIs = "; the default is " + Durations.format(DEFAULT_ATTEMPT_TIMEOUT);
            Checks.requirePositive(attemptTimeout, "attemptTimeout", defaultIs);
            if (attemptTimeout.compareTo(MAX_ATTEMPT_TIMEOUT) > 0) {
                throw new IllegalArgumentException("attemptTimeout must be at most "
                        + Durations.format(MAX_ATTEMPT_TIMEOUT) + ", got " + Durations.format(attemptTimeout)
                        + ": it bounds one attempt, and a longer one only delays the retry of a hung call;"
                        + " pick at most " + Durations.format(MAX_ATTEMPT_TIMEOUT) + defaultIs);
            }
            this.attemptTimeout = attemptTimeout;
            return this;
        }

        /**
         * @param maxRetryAfter the longest {@code Retry-After} the client waits for; default {@link
         *     #DEFAULT_MAX_RETRY_AFTER} (30 s). A longer one ends the operation with that response.
         * @return this builder
         * @throws NullPointerException when it is null
         * @throws IllegalArgumentException when it is negative
         */
        public Builder maxRetryAfter(Duration maxRetryAfter) {
            Objects.requireNonNull(maxRetryAfter, "maxRetryAfter may not be null");
            if (maxRetryAfter.isNegative()) {
                throw new IllegalArgumentException(
                        "maxRetryAfter may not be negative, got " + Durations.format(maxRetryAfter)
                                + "; the default is " + Durations.format(DEFAULT_MAX_RETRY_AFTER));
            }
            this.maxRetryAfter = maxRetryAfter;
            return this;
        }

        /**
         * @param clock reads {@code Retry-After} dates and drives the default circuit breakers' open
         *     state; default the system UTC clock
         * @return this builder
         * @throws NullPointerException when it is null
         */
        public Builder clock(Clock clock) {
            this.clock = Objects.requireNonNull(clock, "clock may not be null");
            return this;
        }

        /**
         * @param sleeper waits between attempts; default {@link Sleeper#threadSleep()}
         * @return this builder
         * @throws NullPointerException when it is null
         */
        public Builder sleeper(Sleeper sleeper) {
            this.sleeper = Objects.requireNonNull(sleeper, "sleeper may not be null");
            return this;
        }

        /**
         * @param random draws the jitter; default {@code ThreadLocalRandom}. Give a seeded one for
         *     reproducible delays; the client synchronizes on it.
         * @return this builder
         * @throws NullPointerException when it is null
         */
        public Builder random(RandomGenerator random) {
            this.random = Objects.requireNonNull(random, "random may not be null");
            return this;
        }

        /**
         * @param methods the methods that get a minted key when the request has none; default {@link
         *     #DEFAULT_KEYED_METHODS} (POST and PATCH). Pass none to send such requests without a key. A
         *     key alone does not make a request retryable: its target must honour it (see {@link
         *     #idempotentTargets}).
         * @return this builder
         * @throws NullPointerException when the array or a method is null
         * @throws IllegalArgumentException when a method is not an HTTP method token
         */
        public Builder keyedMethods(String... methods) {
            Objects.requireNonNull(methods, "methods may not be null");
            Set<String> set = new LinkedHashSet<>();
            for (String m : methods) {
                Objects.requireNonNull(m, "methods may not contain null");
                if (!m.matches("[A-Za-z]+")) {
                    throw new IllegalArgumentException("method '" + m + "' is not an HTTP method such as POST");
                }
                set.add(m.toUpperCase(Locale.ROOT));
            }
            this.keyedMethods = set;
            return this;
        }

        /**
         * Declares the targets that honour {@code Idempotency-Key}, once for the whole client (a
         * platform lists its own services here): keyed POST and PATCH requests to them are retried.
         * Requests to any other target are retried only when the connection was refused or could not
         * be opened (see the class); per call, {@link IdempotentHttpClient#sendKeyed} declares one
         * target. Default: none.
         *
         * @param targets each a host ({@code payments.internal}, any port and path), a {@code
         *     host:port}, or a base URI ({@code https://payments.internal/v1}: that scheme, host and
         *     port, and paths at or below {@code /v1})
         * @return this builder
         * @throws NullPointerException when the array or an entry is null
         * @throws IllegalArgumentException when an entry is none of these
         */
        public Builder idempotentTargets(String... targets) {
            Objects.requireNonNull(targets, "targets may not be null");
            List<String> list = List.of(targets);
            Targets.parse(list); // validates
            this.idempotentTargets = list;
            return this;
        }

        /**
         * @param bytes the longest request body the client holds in memory: the body of a call that
         *     may be retried after it was sent (an idempotent method, or a keyed request to a declared
         *     target, with {@link #maxAttempts} above 1) is read once before the first attempt, and
         *     every attempt sends those bytes, so that a publisher that can be read once (such as
         *     {@code ofInputStream} over one stream) does not send an empty body on a retry, which
         *     the target would refuse as another request under the same key. Default {@link
         *     #DEFAULT_MAX_BUFFERED_BODY} (16 MiB), at most {@link #MAX_BUFFERED_BODY} (1 GiB). A
         *     longer body fails the call with {@link IllegalArgumentException} before anything is
         *     sent; a publisher of unknown length has then been read up to the limit.
         * @return this builder
         * @throws IllegalArgumentException when it is below 1 or above {@link #MAX_BUFFERED_BODY}
         */
        public Builder maxBufferedBody(long bytes) {
            if (bytes < 1 || bytes > MAX_BUFFERED_BODY) {
                throw new IllegalArgumentException("maxBufferedBody must be between 1 and " + MAX_BUFFERED_BODY
                        + " bytes (1 GiB), got " + bytes + ": it bounds the request body held in memory to send on"
                        + " every attempt; the default is " + DEFAULT_MAX_BUFFERED_BODY + " (16 MiB)");
            }
            this.maxBufferedBody = bytes;
            return this;
        }

        /**
         * @param name names this client in log lines; default {@value #DEFAULT_NAME}
         * @return this builder
         * @throws NullPointerException when it is null
         * @throws IllegalArgumentException when it is blank
         */
        public Builder name(String name) {
            this.name = Checks.requireNonBlank(name, "name");
            return this;
        }

        /**
         * @return the client
         * @throws IllegalStateException when both {@link #circuitBreakerConfig} and {@link
         *     #noCircuitBreaker()} were called
         */
        public IdempotentHttpClient build() {
            if (noCircuitBreaker && circuitBreakerConfig != null) {
                throw new IllegalStateException(
                        "IdempotentHttpClient got both circuitBreakerConfig(...) and noCircuitBreaker();"
                                + " call one: the config to tune the breakers, noCircuitBreaker() to turn them off");
            }
            HttpClient client = httpClient != null
                    ? httpClient
                    : HttpClient.newBuilder().connectTimeout(attemptTimeout).build();
            RetryBudget budget = retryBudget != null ? retryBudget : RetryBudget.of(0.1, 10, Duration.ofSeconds(10));
            CircuitBreakerRegistry breakers = null;
            if (!noCircuitBreaker) {
                CircuitBreakerConfig config = circuitBreakerConfig != null
                        ? circuitBreakerConfig
                        : Breakers.countBased(20, 5, 50, Duration.ofSeconds(10), 3)
                                .clock(clock)
                                .build();
                breakers = CircuitBreakerRegistry.of(config);
            }
            return new RetryingClient(
                    client,
                    backoff,
                    maxAttempts,
                    budget,
                    breakers,
                    maxCircuitBreakers,
                    attemptTimeout,
                    maxRetryAfter,
                    clock,
                    sleeper,
                    random,
                    Set.copyOf(keyedMethods),
                    Targets.parse(idempotentTargets),
                    maxBufferedBody,
                    name);
        }
    }
}
