package dev.outbox.http.server;

import dev.outbox.core.internal.Checks;
import dev.outbox.http.server.internal.Admission;
import dev.outbox.http.server.internal.BufferedRequest;
import dev.outbox.http.server.internal.CapturingResponse;
import dev.outbox.http.server.internal.PathPatterns;
import dev.outbox.http.server.internal.Responses;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Metrics;
import jakarta.servlet.DispatcherType;
import jakarta.servlet.Filter;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.ServletRequest;
import jakarta.servlet.ServletResponse;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Set;
import org.jooq.DSLContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A Jakarta Servlet filter that makes the configured endpoints honour {@code Idempotency-Key}
 * (guarantee G5). It works in any Servlet 6 container: Jetty 12 (ee10), Tomcat 10.1+, or Spring
 * MVC (register it as a {@code FilterRegistrationBean}). Register it async-supported: a request it
 * protects is refused async processing anyway, and a registration that is not would make the
 * container refuse it to every request on its paths, a GET that streams included.
 *
 * <pre>{@code
 * IdempotencyStore store = IdempotencyStore.builder().dataSource(dataSource).build();
 * IdempotencyFilter filter = IdempotencyFilter.builder(store).paths("/orders").build();
 * // in the handler of POST /orders:
 * DSLContext tx = IdempotencyFilter.transaction(request);
 * tx.insertInto(ORDERS).set(...).execute();
 * outbox.append(tx, "orders", orderId, orderPlaced);
 * response.setStatus(201);
 * }</pre>
 *
 * <p>For each request with a protected method on a protected path, the filter:
 *
 * <ol>
 *   <li>requires exactly one valid {@code Idempotency-Key} header ({@link IdempotencyKey#parse}),
 *       else answers <b>400</b>;
 *   <li>reads the body into memory, up to {@link Builder#maxBodyBytes}, else <b>413</b>, so it can
 *       fingerprint it and the application can still read it;
 *   <li>runs the rest of the chain inside {@link IdempotencyStore#execute}: the handler gets the
 *       key's transaction from {@link #transaction(HttpServletRequest)} and must do its writes
 *       with it. The response body is held in memory and sent only after the commit;
 *   <li>answers a repeat with the stored status, the stored headers and body, plus {@code
 *       Idempotent-Replayed: true}; the same key with another request with <b>422</b>; a key held
 *       by a request still in flight with <b>409</b> and {@code Retry-After}.
 * </ol>
 *
 * <p>An error the handler sends with {@code sendError} is held back like a body and sent once the
 * transaction has ended, so that the container's error page answers, on the first response and on
 * every replay. The filter claims a key on a request's own dispatch, and on a forward that does not
 * run inside a request holding its key; the dispatch of an error page, an include and an async
 * dispatch pass through it, so that registering it for them claims no key twice.
 *
 * <p><b>What is committed and what is stored</b> is decided by the status the handler answered,
 * whether it set it itself or a framework resolved an exception into it ({@link
 * Builder#responsePolicy}, default {@link ResponsePolicy#standard()}): a 2xx commits the handler's
 * writes with the key and the response; a final refusal such as 400, 404 or 422 rolls the writes
 * back and stores the answer for replay; 5xx, 401, 403, 408, 409, 423, 425 and 429 roll everything
 * back and release the key, so a retry with the same key runs anew. An exception that reaches the
 * filter rolls everything back too.
 *
 * <p><b>Whose key.</b> The {@link Builder#scopeResolver scope} names the caller; a request for
 * which it names none (by default: no authenticated principal) is refused with <b>401</b>, rather
 * than letting every anonymous caller share one scope. It holds the method and the path inside the
 * application, not the context path, host or port: services that share one {@code
 * idempotency_key} table must each give their store an {@link IdempotencyStore.Builder#application
 * application}, or they replay each other's responses.
 *
 * <p>Problem responses (400, 401, 409, 413, 422) are {@code application/problem+json} with a {@code
 * detail} that says what is wrong and how to fix it. Limits: the handler must answer synchronously
 * (no {@code startAsync}); the parts of a multipart request ({@code getParts()}) cannot be read, the
 * container parsing them from the stream the filter has read; form parameters are not re-parsed from the buffered body, so read the
 * body (JSON) rather than {@code getParameter} on protected endpoints, unless a filter ahead of this
 * one parsed the form into the request's parameters (Spring's {@code FormContentFilter} does for PUT,
 * PATCH and DELETE): the body is gone then, the key covers the form's fields (see {@link
 * RequestFingerprint}) and the handler reads them with {@code getParameter}. A body a filter ahead
 * read without leaving it readable, or as parameters, is refused with 500. Metrics: counter {@value
 * IdempotencyStore#METRIC} with outcome {@code rejected} (400), {@code unidentified} (401), {@code
 * too_large} (413), {@code body_unavailable} (500: a filter ahead read the body), {@code
 * response_too_large} (500: the handler's body passed {@link Builder#maxResponseBytes}) and {@code
 * failed} (the scope or fingerprint could not be computed), next to the store's outcomes ({@code
 * conflict} for 409, {@code mismatch} for 422, {@code hold_timeout} for a request PostgreSQL ended
 * after the store's hold timeout) and its timer {@value IdempotencyStore#WAIT_METRIC} of the waits
 * for a key held by a request in flight (see {@link IdempotencyStore}). The 400 and 401 of the
 * filter and the 409 and 422 of the store are logged at DEBUG only: they answer clients, and a line
 * per request would flood the log in a client's retry storm; alert on their counts instead.
 */
public final class IdempotencyFilter implements Filter {

    /** The request attribute that holds the key's transaction ({@link DSLContext}) during the chain. */
    public static final String TX_ATTRIBUTE = IdempotencyFilter.class.getName() + ".transaction";

    private static final Logger LOG = LoggerFactory.getLogger(IdempotencyFilter.class);

    private final IdempotencyStore store;
    private final Set<String> methods;
    private final List<String> paths;
    private final ScopeResolver scopeResolver;
    private final RequestFingerprint fingerprint;
    private final ResponsePolicy responsePolicy;
    private final List<String> storedHeaders;
    private final int maxResponseBytes;
    private final String log;
    private volatile boolean registeredTwiceWarned;
    private final Admission admission;
    private final Counter unresolved;
    private final Counter responseTooLarge;

    private IdempotencyFilter(Builder b) {
        this.store = b.store;
        this.methods = Set.copyOf(b.methods);
        this.paths = List.copyOf(b.paths);
        this.scopeResolver = b.scopeResolver;
        this.fingerprint = b.fingerprint;
        this.responsePolicy = b.responsePolicy;
        this.storedHeaders = List.copyOf(b.storedHeaders);
        this.maxResponseBytes = b.maxResponseBytes;
        this.log = "[idempotency-filter " + b.name + "] ";
        this.admission = new Admission(
                b.maxBodyBytes,
                LOG,
                log,
                counter(b.meterRegistry, b.name, "rejected"),
                counter(b.meterRegistry, b.name, "too_large"),
                counter(b.meterRegistry, b.name, "unidentified"),
                counter(b.meterRegistry, b.name, "body_unavailable"));
        this.unresolved = counter(b.meterRegistry, b.name, "failed");
        this.responseTooLarge = counter(b.meterRegistry, b.name, "response_too_large");
    }

    private static Counter counter(MeterRegistry registry, String name, String outcome) {
        return Counter.builder(IdempotencyStore.METRIC)
                .description("Requests with an Idempotency-Key, by outcome")
                .tag("store", name)
                .tag("outcome", outcome)
                .register(registry);
    }

    /**
     * @param store the key store
     * @return a builder with the defaults documented on each setter
     * @throws NullPointerException when {@code store} is null
     */
    public static Builder builder(IdempotencyStore store) {
        return new Builder(Objects.requireNonNull(store, "store may not be null"));
    }

    /**
     * The transaction that holds the request's key, for the handler's business write and outbox
     * append. Valid only while the handler runs.
     *
     * @param request the current request
     * @return the transaction's jOOQ context
     * @throws IllegalStateException when the request did not pass through this filter
     */
    public static DSLContext transaction(HttpServletRequest request) {
        Object tx = request.getAttribute(TX_ATTRIBUTE);
        if (tx instanceof DSLContext dsl) {
            return dsl;
        }
        throw new IllegalStateException(
                "No idempotency transaction on " + request.getMethod() + " " + ScopeResolver.path(request)
                        + ": the request did not pass through IdempotencyFilter. Map the filter to this path and method"
                        + " (builder paths(...) and methods(...)), ahead of the servlet.");
    }

    @Override
    public void doFilter(ServletRequest req, ServletResponse res, FilterChain chain)
            throws IOException, ServletException {
        if (!(req instanceof HttpServletRequest request)
                || !(res instanceof HttpServletResponse response)
                || !claimsOn(request)
                || !isProtected(request)) {
            chain.doFilter(req, res);
            return;
        }
        if (request.getAttribute(TX_ATTRIBUTE) != null) {
            // registered twice (two registrations of the filter): the outer pass holds the key already,
            // and a second claim in its transaction would find its own row in flight and answer 409
            warnRegisteredTwice(request);
            chain.doFilter(req, res);
            return;
        }
        String path = ScopeResolver.path(request);
        String key = admission.key(request, path, response);
        if (key == null) {
            return;
        }
        Admission.Body body = admission.body(request, path, response);
        if (body == null) {
            return;
        }
        String scope;
        String print;
        try {
            scope = scopeResolver.scope(request);
            print = scope == null
                    ? null
                    : fingerprint.fingerprint(
                            request.getMethod(),
                            path,
                            request.getQueryString(),
                            request.getContentType(),
                            body.fingerprinted());
        } catch (RuntimeException e) {
            unresolved.increment();
            throw new ServletException(
                    log + "could not resolve the scope or fingerprint of " + request.getMethod() + " " + path, e);
        }
        if (scope == null) {
            admission.refuseAnonymous(request, path, response);
            return;
        }
        IdempotencyRequest idempotencyRequest = new IdempotencyRequest(scope, key, print);
        BufferedRequest buffered = new BufferedRequest(request, body.content());
        CapturingResponse capturing = new CapturingResponse(response, maxResponseBytes);
        IdempotencyOutcome outcome;
        try {
            outcome = store.execute(idempotencyRequest, responsePolicy, tx -> {
                buffered.setAttribute(TX_ATTRIBUTE, tx);
                try {
                    chain.doFilter(buffered, capturing);
                } catch (IOException | ServletException | RuntimeException e) {
                    if (capturing.overflowed()) {
                        throw responseTooLarge(request, path, e);
                    }
                    throw e;
                } finally {
                    buffered.removeAttribute(TX_ATTRIBUTE);
                }
                if (capturing.overflowed()) {
                    throw responseTooLarge(request, path, null);
                }
                if (buffered.isAsyncStarted()) {
                    throw new ServletException(
                            log + "the handler of " + request.getMethod() + " " + path
                                    + " started async processing, which cannot share the key's transaction; answer synchronously");
                }
                return Responses.capture(capturing, storedHeaders);
            });
        } catch (IOException | ServletException | RuntimeException e) {
            Responses.resetIfPossible(response);
            throw e;
        } catch (Exception e) {
            Responses.resetIfPossible(response);
            throw new ServletException(e);
        }
        switch (outcome) {
            case IdempotencyOutcome.Executed e -> Responses.send(response, capturing);
            case IdempotencyOutcome.NotStored n -> Responses.send(response, capturing);
            case IdempotencyOutcome.Replayed r -> Responses.replay(response, r.response());
            case IdempotencyOutcome.Mismatch m -> Responses.mismatch(response, key, request.getMethod() + " " + path);
            case IdempotencyOutcome.InFlight f ->
                Responses.inFlight(response, key, request.getMethod() + " " + path, f.retryAfter());
        }
    }

    /** The handler wrote more than {@link Builder#maxResponseBytes}: everything is rolled back. */
    private ServletException responseTooLarge(HttpServletRequest request, String path, Exception cause) {
        responseTooLarge.increment();
        return new ServletException(
                log + "the handler of " + request.getMethod() + " " + path
                        + " wrote a response body larger than maxResponseBytes (" + maxResponseBytes
                        + " bytes), which could not be stored for replay: its writes are rolled back and the key"
                        + " released. Answer a smaller body (the created resource's id or Location, say) or raise"
                        + " maxResponseBytes",
                cause);
    }

    /**
     * The key is claimed on a request's own dispatch, and on a forward that does not run inside one
     * holding its key already; an error page's dispatch, an include and an async dispatch are part of
     * a request this filter has seen, and pass through.
     */
    private static boolean claimsOn(HttpServletRequest request) {
        DispatcherType type = request.getDispatcherType();
        return type == DispatcherType.REQUEST
                || (type == DispatcherType.FORWARD && request.getAttribute(TX_ATTRIBUTE) == null);
    }

    private boolean isProtected(HttpServletRequest request) {
        return covers(request.getMethod(), ScopeResolver.path(request));
    }

    /**
     * Whether this filter protects a method on a path: a request with that method to that path must
     * carry an {@code Idempotency-Key} and runs inside the key's transaction. Use it to check, for
     * example at start-up or in a test, that every endpoint meant to be idempotent is covered by the
     * filter's {@link Builder#methods methods} and {@link Builder#paths paths}.
     *
     * @param method an HTTP method, any case, e.g. {@code POST}
     * @param path a path inside the application ({@code servletPath + pathInfo}, no query string),
     *     e.g. {@code /orders/42}
     * @return true when the filter requires a key for that method and path
     * @throws NullPointerException when an argument is null
     */
    public boolean covers(String method, String path) {
        Objects.requireNonNull(method, "method may not be null");
        Objects.requireNonNull(path, "path may not be null");
        return methods.contains(method.toUpperCase(Locale.ROOT)) && PathPatterns.matchesAny(paths, path);
    }

    /**
     * Builds an {@link IdempotencyFilter}. Setters check their own argument at once ({@link
     * NullPointerException} for null, {@link IllegalArgumentException} for a bad value). Not
     * thread-safe; the built filter is.
     */
    public static final class Builder {
        /** Default {@link #methods(String...)}: the two methods HTTP does not define as idempotent. */
        public static final Set<String> DEFAULT_METHODS = Set.of("POST", "PATCH");

        /** Default {@link #paths(String...)}: every path. */
        public static final List<String> DEFAULT_PATHS = List.of("/*");

        /** Default {@link #maxBodyBytes(int)}: 1 MiB. */
        public static final int DEFAULT_MAX_BODY_BYTES = 1 << 20;

        /** Largest {@link #maxBodyBytes(int)}: 64 MiB. */
        public static final int MAX_BODY_BYTES = 64 << 20;

        /** Default {@link #maxResponseBytes(int)}: 8 MiB. */
        public static final int DEFAULT_MAX_RESPONSE_BYTES = 8 << 20;

        /** Largest {@link #maxResponseBytes(int)}: 256 MiB. */
        public static final int MAX_RESPONSE_BYTES = 256 << 20;

        /** Default {@link #storedHeaders(String...)}. */
        public static final List<String> DEFAULT_STORED_HEADERS =
                List.of("Content-Type", "Location", "Content-Location", "ETag", "Last-Modified", "Content-Language");

        /** Default {@link #name(String)}, the same as the store's. */
        public static final String DEFAULT_NAME = IdempotencyStore.Builder.DEFAULT_NAME;

        private final IdempotencyStore store;
        private Set<String> methods = DEFAULT_METHODS;
        private List<String> paths = DEFAULT_PATHS;
        private ScopeResolver scopeResolver = ScopeResolver.principal();
        private RequestFingerprint fingerprint = RequestFingerprint.sha256();
        private ResponsePolicy responsePolicy = ResponsePolicy.standard();
        private int maxBodyBytes = DEFAULT_MAX_BODY_BYTES;
        private int maxResponseBytes = DEFAULT_MAX_RESPONSE_BYTES;
        private List<String> storedHeaders = DEFAULT_STORED_HEADERS;
        private MeterRegistry meterRegistry = Metrics.globalRegistry;
        private String name = DEFAULT_NAME;

        private Builder(IdempotencyStore store) {
            this.store = store;
        }

        /**
         * @param methods the methods that need a key; default {@link #DEFAULT_METHODS} ({@code POST}
         *     and {@code PATCH}, the methods HTTP does not define as idempotent)
         * @return this builder
         * @throws NullPointerException when the array or a method is null
         * @throws IllegalArgumentException when none is given or one is not an HTTP method token
         */
        public Builder methods(String... methods) {
            Objects.requireNonNull(methods, "methods may not be null");
            if (methods.length == 0) {
                throw new IllegalArgumentException("methods may not be empty; the default is POST and PATCH");
            }
            Set<String> set = new LinkedHashSet<>();
            for (String m : methods) {
                Objects.requireNonNull(m, "methods may not contain null");
                if (!m.matches("[A-Za-z]+")) {
                    throw new IllegalArgumentException("method '" + m + "' is not an HTTP method such as POST");
                }
                set.add(m.toUpperCase(Locale.ROOT));
            }
            this.methods = set;
            return this;
        }

        /**
         * @param patterns the paths (inside the application) that need a key: exact ({@code /orders}),
         *     a prefix ({@code /orders/*} matches {@code /orders} and everything below it) or {@code /*}
         *     for all; default {@link #DEFAULT_PATHS} ({@code /*})
         * @return this builder
         * @throws NullPointerException when the array or a pattern is null
         * @throws IllegalArgumentException when none is given or a pattern does not start with {@code /},
         *     has a {@code *} other than a trailing {@code /*}, or is a route template such as {@code
         *     /orders/{id}} (write {@code /orders/*})
         */
        public Builder paths(String... patterns) {
            Objects.requireNonNull(patterns, "patterns may not be null");
            if (patterns.length == 0) {
                throw new IllegalArgumentException("paths may not be empty; the default is /* (every path)");
            }
            List<String> list = new ArrayList<>();
            for (String p : patterns) {
                list.add(PathPatterns.requireSupported(Objects.requireNonNull(p, "paths may not contain null")));
            }
            this.paths = list;
            return this;
        }

        /**
         * @param scopeResolver decides whose key it is; default {@link ScopeResolver#principal()},
         *     which refuses requests without an authenticated principal with 401
         * @return this builder
         * @throws NullPointerException when it is null
         */
        public Builder scopeResolver(ScopeResolver scopeResolver) {
            this.scopeResolver = Objects.requireNonNull(scopeResolver, "scopeResolver may not be null");
            return this;
        }

        /**
         * @param fingerprint identifies a request's content; default {@link RequestFingerprint#sha256()}
         * @return this builder
         * @throws NullPointerException when it is null
         */
        public Builder fingerprint(RequestFingerprint fingerprint) {
            this.fingerprint = Objects.requireNonNull(fingerprint, "fingerprint may not be null");
            return this;
        }

        /**
         * @param responsePolicy decides, from the status the handler answered, whether the handler's
         *     writes commit, whether the answer is stored for replay, or whether the key is released
         *     for a retry; default {@link ResponsePolicy#standard()} (2xx commits; final refusals such
         *     as 400, 404, 422 are stored without the writes; 5xx, 401, 403, 408, 409, 423, 425, 429
         *     release the key)
         * @return this builder
         * @throws NullPointerException when it is null
         */
        public Builder responsePolicy(ResponsePolicy responsePolicy) {
            this.responsePolicy = Objects.requireNonNull(responsePolicy, "responsePolicy may not be null");
            return this;
        }

        /**
         * @param maxBodyBytes the largest request body buffered; larger ones get 413; default {@link
         *     #DEFAULT_MAX_BODY_BYTES} (1 MiB)
         * @return this builder
         * @throws IllegalArgumentException when it is not between 0 and {@link #MAX_BODY_BYTES} (64 MiB)
         */
        public Builder maxBodyBytes(int maxBodyBytes) {
            this.maxBodyBytes = Checks.requireBetween(
                    maxBodyBytes, 0, MAX_BODY_BYTES, "maxBodyBytes", "; the default is 1048576 (1 MiB)");
            return this;
        }

        /**
         * The response body of a protected request is held in memory until the transaction commits, and
         * stored with the key for replays. A handler that writes more than this has its writes rolled
         * back and its key released, and the request fails with a {@link ServletException} (500 from the
         * container), counted with outcome {@code response_too_large} (and {@code failed}, as any
         * request whose handler failed): a body that cannot be stored
         * cannot be replayed, and an unbounded one could exhaust the heap.
         *
         * @param maxResponseBytes the largest response body held and stored; default {@link
         *     #DEFAULT_MAX_RESPONSE_BYTES} (8 MiB)
         * @return this builder
         * @throws IllegalArgumentException when it is not between 0 and {@link #MAX_RESPONSE_BYTES} (256 MiB)
         */
        public Builder maxResponseBytes(int maxResponseBytes) {
            this.maxResponseBytes = Checks.requireBetween(
                    maxResponseBytes, 0, MAX_RESPONSE_BYTES, "maxResponseBytes", "; the default is 8388608 (8 MiB)");
            return this;
        }

        /**
         * @param names the response headers stored with the response and sent on replays; default
         *     {@link #DEFAULT_STORED_HEADERS} ({@code Content-Type, Location, Content-Location, ETag,
         *     Last-Modified, Content-Language}). The first response carries every header the handler
         *     set; replays carry only these.
         * @return this builder
         * @throws NullPointerException when the array or a name is null
         * @throws IllegalArgumentException when a name is blank, or a cookie or hop-by-hop header, which
         *     must never be replayed
         */
        public Builder storedHeaders(String... names) {
            Objects.requireNonNull(names, "names may not be null");
            List<String> list = new ArrayList<>();
            for (String n : names) {
                list.add(Responses.requireStorable(Objects.requireNonNull(n, "names may not contain null")));
            }
            this.storedHeaders = list;
            return this;
        }

        /**
         * @param meterRegistry where the filter's counters go; default Micrometer's global registry
         *     ({@link Metrics#globalRegistry})
         * @return this builder
         * @throws NullPointerException when it is null
         */
        public Builder meterRegistry(MeterRegistry meterRegistry) {
            this.meterRegistry = Objects.requireNonNull(meterRegistry, "meterRegistry may not be null");
            return this;
        }

        /**
         * @param name names this filter in log lines and in the metrics' {@code store} tag; default
         *     {@value #DEFAULT_NAME} (use the store's name, so their counters line up)
         * @return this builder
         * @throws NullPointerException when it is null
         * @throws IllegalArgumentException when it is blank
         */
        public Builder name(String name) {
            this.name = Checks.requireNonBlank(name, "name");
            return this;
        }

        /** @return the filter */
        public IdempotencyFilter build() {
            return new IdempotencyFilter(this);
        }
    }

    private void warnRegisteredTwice(HttpServletRequest request) {
        if (!registeredTwiceWarned) {
            registeredTwiceWarned = true;
            LOG.warn(
                    "{}{} {} passed this filter twice: it is registered twice (for example a FilterRegistrationBean"
                            + " of its own next to the Spring Boot starter's); the inner pass lets the request through"
                            + " under the outer one's key, but remove one registration",
                    log,
                    request.getMethod(),
                    ScopeResolver.path(request));
        }
    }
}
