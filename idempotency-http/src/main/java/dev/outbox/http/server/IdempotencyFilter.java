package dev.outbox.http.server;

import dev.outbox.core.internal.Checks;
import dev.outbox.http.server.internal.BufferedRequest;
import dev.outbox.http.server.internal.CapturingResponse;
import dev.outbox.http.server.internal.Problems;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Metrics;
import jakarta.servlet.Filter;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.ServletRequest;
import jakarta.servlet.ServletResponse;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import org.jooq.DSLContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A Jakarta Servlet filter that makes the configured endpoints honour {@code Idempotency-Key}
 * (guarantee G5). It works in any Servlet 6 container: Jetty 12 (ee10), Tomcat 10.1+, or Spring
 * MVC (register it as a {@code FilterRegistrationBean}).
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
 * <p><b>Which responses are stored.</b> Statuses below 500 (2xx, 3xx and 4xx) commit and are
 * replayed to every repeat: they are the server's answer to that request. A 5xx status, or an
 * exception from the handler, rolls back the whole transaction (key, business rows, outbox rows):
 * the client may retry with the same key and the request runs anew. So a handler that has written
 * and then finds a reason to fail should throw or answer 5xx, not 4xx.
 *
 * <p>Problem responses (400, 409, 413, 422) are {@code application/problem+json} with a {@code
 * detail} that says what is wrong and how to fix it. Limits: the handler must answer synchronously
 * (no {@code startAsync}); form parameters are not re-parsed from the buffered body, so read the
 * body (JSON) rather than {@code getParameter} on protected endpoints. Metrics: counter {@value
 * IdempotencyStore#METRIC} with outcome {@code rejected} (400) and {@code too_large} (413), next to
 * the store's outcomes.
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
  private final int maxBodyBytes;
  private final List<String> storedHeaders;
  private final String log;
  private final Counter rejected;
  private final Counter tooLarge;

  private IdempotencyFilter(Builder b) {
    this.store = b.store;
    this.methods = Set.copyOf(b.methods);
    this.paths = List.copyOf(b.paths);
    this.scopeResolver = b.scopeResolver;
    this.fingerprint = b.fingerprint;
    this.maxBodyBytes = b.maxBodyBytes;
    this.storedHeaders = List.copyOf(b.storedHeaders);
    this.log = "[idempotency-filter " + b.name + "] ";
    this.rejected = counter(b.meterRegistry, b.name, "rejected");
    this.tooLarge = counter(b.meterRegistry, b.name, "too_large");
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
    throw new IllegalStateException("No idempotency transaction on " + request.getMethod() + " " + ScopeResolver.path(request)
        + ": the request did not pass through IdempotencyFilter. Map the filter to this path and method"
        + " (builder paths(...) and methods(...)), ahead of the servlet.");
  }

  @Override
  public void doFilter(ServletRequest req, ServletResponse res, FilterChain chain) throws IOException, ServletException {
    if (!(req instanceof HttpServletRequest request) || !(res instanceof HttpServletResponse response)
        || !isProtected(request)) {
      chain.doFilter(req, res);
      return;
    }
    String key = key(request, response);
    if (key == null) {
      return;
    }
    byte[] body = body(request, response);
    if (body == null) {
      return;
    }
    String path = ScopeResolver.path(request);
    IdempotencyRequest idempotencyRequest;
    try {
      idempotencyRequest = new IdempotencyRequest(
          scopeResolver.scope(request), key, fingerprint.fingerprint(request.getMethod(), path, request.getContentType(), body));
    } catch (RuntimeException e) {
      throw new ServletException(log + "could not resolve the scope or fingerprint of " + request.getMethod() + " " + path, e);
    }
    BufferedRequest buffered = new BufferedRequest(request, body);
    CapturingResponse capturing = new CapturingResponse(response);
    IdempotencyOutcome outcome;
    try {
      outcome = store.execute(idempotencyRequest, tx -> {
        buffered.setAttribute(TX_ATTRIBUTE, tx);
        try {
          chain.doFilter(buffered, capturing);
        } finally {
          buffered.removeAttribute(TX_ATTRIBUTE);
        }
        if (buffered.isAsyncStarted()) {
          throw new ServletException(log + "the handler of " + request.getMethod() + " " + path
              + " started async processing, which cannot share the key's transaction; answer synchronously");
        }
        return capture(capturing);
      });
    } catch (IOException | ServletException | RuntimeException e) {
      resetIfPossible(response);
      throw e;
    } catch (Exception e) {
      resetIfPossible(response);
      throw new ServletException(e);
    }
    switch (outcome) {
      case IdempotencyOutcome.Executed e -> sendBody(response, capturing.body());
      case IdempotencyOutcome.NotStored n -> sendBody(response, capturing.body());
      case IdempotencyOutcome.Replayed r -> replay(response, r.response());
      case IdempotencyOutcome.Mismatch m -> Problems.send(response, 422, "Idempotency-Key reused with another request",
          "The " + IdempotencyKey.HEADER + " '" + key + "' was already used for a different request to "
              + request.getMethod() + " " + path + " (another body or content type). Send a new key for a new"
              + " operation; reuse a key only to retry the identical request.");
      case IdempotencyOutcome.InFlight f -> {
        long seconds = (f.retryAfter().toMillis() + 999) / 1000;
        response.setHeader("Retry-After", Long.toString(seconds));
        Problems.send(response, 409, "Request with this Idempotency-Key still in progress",
            "A request with " + IdempotencyKey.HEADER + " '" + key + "' to " + request.getMethod() + " " + path
                + " is still being processed. Retry the same request with the same key after " + seconds
                + " s to receive its response.");
      }
    }
  }

  private boolean isProtected(HttpServletRequest request) {
    return covers(request.getMethod(), ScopeResolver.path(request));
  }

  /**
   * Whether this filter requires a key for {@code method} on {@code path}, as the start-up gate asks
   * it (see {@code dev.outbox.http.server.gate.IdempotencyGate}). A path is matched as written: a
   * route template such as {@code /orders/{id}} or a servlet mapping such as {@code /orders/*} is
   * covered only by a pattern that covers every path it stands for ({@code /orders/*} or {@code
   * /*}).
   *
   * @param method an HTTP method, any case
   * @param path a path inside the application, or a route pattern
   * @return whether requests with that method and path pass through the key store
   * @throws NullPointerException when an argument is null
   */
  public boolean covers(String method, String path) {
    Objects.requireNonNull(path, "path may not be null");
    if (!methods.contains(Objects.requireNonNull(method, "method may not be null").toUpperCase(Locale.ROOT))) {
      return false;
    }
    for (String pattern : paths) {
      if (pattern.equals("/*")) {
        return true;
      }
      if (pattern.endsWith("/*")) {
        String prefix = pattern.substring(0, pattern.length() - 2);
        if (path.equals(prefix) || path.startsWith(prefix + "/")) {
          return true;
        }
      } else if (path.equals(pattern)) {
        return true;
      }
    }
    return false;
  }

  private String key(HttpServletRequest request, HttpServletResponse response) throws IOException {
    List<String> values = Collections.list(request.getHeaders(IdempotencyKey.HEADER));
    String problem = null;
    String key = null;
    if (values.isEmpty()) {
      problem = request.getMethod() + " " + ScopeResolver.path(request) + " requires an " + IdempotencyKey.HEADER
          + " header. Mint one unique value per operation (e.g. a UUID), send it as " + IdempotencyKey.HEADER
          + ": \"<uuid>\" and reuse it on every retry of that operation.";
    } else if (values.size() > 1) {
      problem = "The request has " + values.size() + " " + IdempotencyKey.HEADER + " headers; send exactly one.";
    } else {
      try {
        key = IdempotencyKey.parse(values.get(0));
      } catch (IllegalArgumentException e) {
        problem = e.getMessage();
      }
    }
    if (problem != null) {
      rejected.increment();
      LOG.debug("{}400 for {} {}: {}", log, request.getMethod(), ScopeResolver.path(request), problem);
      Problems.send(response, 400, "Invalid Idempotency-Key", problem);
      return null;
    }
    return key;
  }

  private byte[] body(HttpServletRequest request, HttpServletResponse response) throws IOException {
    long declared = request.getContentLengthLong();
    byte[] body = null;
    if (declared <= maxBodyBytes) {
      try (InputStream in = request.getInputStream()) {
        body = in.readNBytes(maxBodyBytes + 1);
      }
    }
    if (body == null || body.length > maxBodyBytes) {
      tooLarge.increment();
      Problems.send(response, 413, "Request body too large for an idempotent request",
          "The body of " + request.getMethod() + " " + ScopeResolver.path(request) + " is larger than " + maxBodyBytes
              + " bytes, the most this endpoint buffers to fingerprint and replay a request. Send a smaller body,"
              + " or ask the operator to raise maxBodyBytes.");
      return null;
    }
    return body;
  }

  private StoredResponse capture(CapturingResponse capturing) {
    Map<String, List<String>> headers = new LinkedHashMap<>();
    for (String name : storedHeaders) {
      if (name.equalsIgnoreCase("Content-Type")) {
        String type = capturing.getContentType();
        if (type != null) {
          headers.put("Content-Type", List.of(type));
        }
        continue;
      }
      Collection<String> values = capturing.getHeaders(name);
      if (values != null && !values.isEmpty()) {
        headers.put(name, new ArrayList<>(values));
      }
    }
    return new StoredResponse(capturing.getStatus(), headers, capturing.body());
  }

  private static void sendBody(HttpServletResponse response, byte[] body) throws IOException {
    response.setContentLength(body.length);
    if (body.length > 0) {
      response.getOutputStream().write(body);
    }
  }

  private static void replay(HttpServletResponse response, StoredResponse stored) throws IOException {
    response.setStatus(stored.status());
    stored.headers().forEach((name, values) -> {
      if (name.equalsIgnoreCase("Content-Type")) {
        response.setContentType(values.get(0));
      } else {
        values.forEach(v -> response.addHeader(name, v));
      }
    });
    response.setHeader(IdempotencyKey.REPLAYED_HEADER, "true");
    sendBody(response, stored.body());
  }

  private static void resetIfPossible(HttpServletResponse response) {
    if (!response.isCommitted()) {
      response.reset();
    }
  }

  /** Builds an {@link IdempotencyFilter}. Not thread-safe; the built filter is. */
  public static final class Builder {
    private static final Set<String> NEVER_STORED = Set.of(
        "set-cookie", "set-cookie2", "content-length", "transfer-encoding", "connection", "keep-alive", "date",
        "upgrade", "trailer", "proxy-authenticate", IdempotencyKey.REPLAYED_HEADER.toLowerCase(Locale.ROOT));

    private final IdempotencyStore store;
    private Set<String> methods = Set.of("POST", "PATCH");
    private List<String> paths = List.of("/*");
    private ScopeResolver scopeResolver = ScopeResolver.principal();
    private RequestFingerprint fingerprint = RequestFingerprint.sha256();
    private int maxBodyBytes = 1 << 20;
    private List<String> storedHeaders =
        List.of("Content-Type", "Location", "Content-Location", "ETag", "Last-Modified", "Content-Language");
    private MeterRegistry meterRegistry = Metrics.globalRegistry;
    private String name = "default";

    private Builder(IdempotencyStore store) {
      this.store = store;
    }

    /**
     * @param methods the methods that need a key; default {@code POST} and {@code PATCH}, the
     *     methods HTTP does not define as idempotent
     * @return this builder
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
     *     for all; default {@code /*}
     * @return this builder
     * @throws IllegalArgumentException when none is given or a pattern does not start with {@code /}
     *     or has a {@code *} other than a trailing {@code /*}
     */
    public Builder paths(String... patterns) {
      Objects.requireNonNull(patterns, "patterns may not be null");
      if (patterns.length == 0) {
        throw new IllegalArgumentException("paths may not be empty; the default is /* (every path)");
      }
      List<String> list = new ArrayList<>();
      for (String p : patterns) {
        Objects.requireNonNull(p, "paths may not contain null");
        String withoutWildcard = p.endsWith("/*") ? p.substring(0, p.length() - 2) : p;
        if (!p.startsWith("/") || withoutWildcard.contains("*")) {
          throw new IllegalArgumentException("path pattern '" + p
              + "' is not supported: use an exact path (/orders), a prefix (/orders/*) or /*");
        }
        list.add(p);
      }
      this.paths = list;
      return this;
    }

    /**
     * @param scopeResolver decides whose key it is; default {@link ScopeResolver#principal()}
     * @return this builder
     */
    public Builder scopeResolver(ScopeResolver scopeResolver) {
      this.scopeResolver = Objects.requireNonNull(scopeResolver, "scopeResolver may not be null");
      return this;
    }

    /**
     * @param fingerprint identifies a request's content; default {@link RequestFingerprint#sha256()}
     * @return this builder
     */
    public Builder fingerprint(RequestFingerprint fingerprint) {
      this.fingerprint = Objects.requireNonNull(fingerprint, "fingerprint may not be null");
      return this;
    }

    /**
     * @param maxBodyBytes the largest request body buffered; larger ones get 413; default 1 MiB
     * @return this builder
     * @throws IllegalArgumentException when it is not between 0 and 64 MiB
     */
    public Builder maxBodyBytes(int maxBodyBytes) {
      if (maxBodyBytes < 0 || maxBodyBytes > 64 << 20) {
        throw new IllegalArgumentException("maxBodyBytes must be between 0 and 67108864 (64 MiB), got " + maxBodyBytes
            + "; the default is 1048576 (1 MiB)");
      }
      this.maxBodyBytes = maxBodyBytes;
      return this;
    }

    /**
     * @param names the response headers stored with the response and sent on replays; default
     *     {@code Content-Type, Location, Content-Location, ETag, Last-Modified, Content-Language}.
     *     The first response carries every header the handler set; replays carry only these.
     * @return this builder
     * @throws IllegalArgumentException when a name is a cookie or hop-by-hop header, which must
     *     never be replayed
     */
    public Builder storedHeaders(String... names) {
      Objects.requireNonNull(names, "names may not be null");
      List<String> list = new ArrayList<>();
      for (String n : names) {
        Objects.requireNonNull(n, "names may not contain null");
        if (NEVER_STORED.contains(n.toLowerCase(Locale.ROOT)) || n.isBlank()) {
          throw new IllegalArgumentException("header '" + n + "' cannot be stored and replayed: cookies, framing and"
              + " hop-by-hop headers belong to one response only");
        }
        list.add(n);
      }
      this.storedHeaders = list;
      return this;
    }

    /**
     * @param meterRegistry where the filter's counters go; default Micrometer's global registry
     * @return this builder
     */
    public Builder meterRegistry(MeterRegistry meterRegistry) {
      this.meterRegistry = Objects.requireNonNull(meterRegistry, "meterRegistry may not be null");
      return this;
    }

    /**
     * @param name names this filter in log lines and in the metrics' {@code store} tag; default
     *     {@code default} (use the store's name, so their counters line up)
     * @return this builder
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
}
