package dev.outbox.http.server.gate;

import dev.outbox.http.server.IdempotencyFilter;
import jakarta.servlet.FilterRegistration;
import jakarta.servlet.ServletContext;
import jakarta.servlet.ServletContextEvent;
import jakarta.servlet.ServletContextListener;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.function.BiPredicate;
import java.util.function.Predicate;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The start-up gate: lists every mutating endpoint of the application and fails the start when one
 * is neither covered by {@link IdempotencyFilter} nor exempted with a reason. It makes the safe path
 * the default one: a new {@code POST} that nobody put behind the filter stops the deployment, with a
 * message naming it and the two ways out, instead of taking duplicate orders in production.
 *
 * <p>Plain servlet container (Jetty, Tomcat): register {@link #listener()} in the context; it walks
 * {@link ServletContext#getServletRegistrations()} when the context starts, finds the servlets that
 * override {@code doPost}, {@code doPatch} (and {@code doPut}, {@code doDelete} when asked for), or
 * {@code service}, and checks each mapping against the filter's own paths and methods and against the
 * container mappings of the filter.
 *
 * <pre>{@code
 * IdempotencyFilter filter = IdempotencyFilter.builder(store).paths("/orders").build();
 * context.addFilter(new FilterHolder(filter), "/*", EnumSet.of(DispatcherType.REQUEST));
 * context.addServlet(new ServletHolder(new OrdersServlet()), "/orders");
 * context.addEventListener(IdempotencyGate.builder().filter(filter)
 *     .exempt("POST /webhooks/stripe", "deduplicated by the Stripe event id")
 *     .build().listener());
 * }</pre>
 *
 * <p>Spring MVC: {@link #check(Collection)} with {@link SpringMvcEndpoints#of} (the Spring Boot
 * starter does this once the singletons are created, before the web server listens).
 *
 * <p><b>Exemptions</b> are explicit and carry a reason: {@link dev.outbox.http.server.NotIdempotent}
 * on the handler, or {@link Builder#exempt(String, String)}. Every exemption is logged at each start.
 * <b>Rollout</b>: {@link Builder#warnOnly(boolean)} logs uncovered endpoints as a warning instead of
 * failing, so a fleet can adopt the gate before every service is clean. Thread-safe once built.
 */
public final class IdempotencyGate {
    private static final Logger LOG = LoggerFactory.getLogger(IdempotencyGate.class);

    /** The methods checked by default: the two HTTP does not define as idempotent. */
    public static final Set<String> DEFAULT_METHODS = Set.of("POST", "PATCH");

    private static final List<String> CHECKABLE = List.of("POST", "PATCH", "PUT", "DELETE");

    private final List<BiPredicate<String, String>> coverage;
    private final Set<String> filterClassNames;
    private final Set<String> methods;
    private final Map<String, String> exemptions;
    private final boolean warnOnly;
    private volatile GateReport lastReport;

    private IdempotencyGate(Builder b) {
        this.coverage = List.copyOf(b.coverage);
        this.filterClassNames = Set.copyOf(b.filterClassNames);
        this.methods = Set.copyOf(b.methods);
        this.exemptions = Map.copyOf(b.exemptions);
        this.warnOnly = b.warnOnly;
    }

    /** @return a builder; give it at least one filter */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Checks the given endpoints, logs the report (exemptions at INFO, uncovered endpoints at WARN in
     * warn-only mode), and fails when an endpoint is uncovered unless {@link Builder#warnOnly} is set.
     * Endpoints with methods this gate does not check (GET, and PUT/DELETE unless asked for) are
     * ignored; an endpoint with method {@code *} counts once for every checked method.
     *
     * @param endpoints the application's routes
     * @return the report
     * @throws UncoveredEndpointsException when an endpoint is uncovered and the gate is not warn-only
     */
    public GateReport check(Collection<Endpoint> endpoints) {
        return check(endpoints, e -> true);
    }

    /**
     * As {@link #check(Collection)}, for a filter the container maps to the given URL patterns only:
     * an endpoint counts as covered only if one of them reaches its path as well, since the filter
     * never sees the other requests, whatever its own paths say.
     *
     * @param endpoints the application's routes
     * @param filterUrlPatterns the URL patterns (servlet syntax: {@code /*}, {@code /orders/*}, {@code
     *     /orders}) the container maps the filter to; empty when it is not registered at all
     * @return the report
     * @throws UncoveredEndpointsException when an endpoint is uncovered and the gate is not warn-only
     */
    public GateReport check(Collection<Endpoint> endpoints, Collection<String> filterUrlPatterns) {
        List<String> patterns =
                List.copyOf(Objects.requireNonNull(filterUrlPatterns, "filterUrlPatterns may not be null"));
        return check(endpoints, e -> {
            for (String pattern : patterns) {
                if (ServletEndpoints.patternCovers(pattern, e.path())) {
                    return true;
                }
            }
            return false;
        });
    }

    /**
     * Lists the servlets of {@code context} and checks them (see the class comment). Servlets whose
     * class cannot be loaded, or that are not {@code HttpServlet}s, are assumed to take every method.
     *
     * @param context a started or starting servlet context
     * @return the report
     * @throws UncoveredEndpointsException when an endpoint is uncovered and the gate is not warn-only
     */
    public GateReport check(ServletContext context) {
        List<ServletEndpoints.Mapped> mapped = ServletEndpoints.of(context);
        List<FilterRegistration> filters = new ArrayList<>();
        for (FilterRegistration r : context.getFilterRegistrations().values()) {
            if (filterClassNames.contains(r.getClassName())) {
                filters.add(r);
            }
        }
        Map<String, String> servletNames = new LinkedHashMap<>();
        List<Endpoint> endpoints = new ArrayList<>();
        for (ServletEndpoints.Mapped m : mapped) {
            endpoints.add(m.endpoint());
            servletNames.put(m.endpoint().path() + "\n" + m.endpoint().handler(), m.servletName());
        }
        return check(endpoints, e -> {
            String name = servletNames.get(e.path() + "\n" + e.handler());
            for (FilterRegistration r : filters) {
                if (name != null && r.getServletNameMappings().contains(name)) {
                    return true;
                }
                for (String pattern : r.getUrlPatternMappings()) {
                    if (ServletEndpoints.patternCovers(pattern, e.path())) {
                        return true;
                    }
                }
            }
            return false;
        });
    }

    private GateReport check(Collection<Endpoint> endpoints, Predicate<Endpoint> mappedToFilter) {
        Objects.requireNonNull(endpoints, "endpoints may not be null");
        Set<Endpoint> expanded = new LinkedHashSet<>();
        for (Endpoint e : endpoints) {
            if (e.method().equals("*")) {
                for (String m : methods.stream().sorted().toList()) {
                    expanded.add(e.withMethod(m));
                }
            } else if (methods.contains(e.method())) {
                expanded.add(e);
            }
        }
        List<Endpoint> covered = new ArrayList<>();
        List<Endpoint> exempted = new ArrayList<>();
        List<Endpoint> uncovered = new ArrayList<>();
        Set<String> used = new LinkedHashSet<>();
        for (Endpoint e : expanded) {
            String configured = exemptions.get(e.route());
            String any = exemptions.get("* " + e.path());
            if (e.exemption() != null) {
                exempted.add(e.withExemption("@NotIdempotent: " + e.exemption()));
            } else if (configured != null || any != null) {
                used.add(configured != null ? e.route() : "* " + e.path());
                exempted.add(e.withExemption("configured: " + (configured != null ? configured : any)));
            } else if (isCovered(e) && mappedToFilter.test(e)) {
                covered.add(e);
            } else {
                uncovered.add(e);
            }
        }
        List<String> unused = exemptions.keySet().stream()
                .filter(k -> !used.contains(k))
                .sorted()
                .toList();
        GateReport report = new GateReport(covered, exempted, uncovered, unused);
        lastReport = report;
        if (report.passed()) {
            LOG.info("{}", report.describe());
        } else if (warnOnly) {
            LOG.warn("{} (warn-only: the start goes on)", report.describe());
        } else {
            LOG.error("{}", report.describe());
            throw new UncoveredEndpointsException(report);
        }
        return report;
    }

    private boolean isCovered(Endpoint e) {
        for (BiPredicate<String, String> c : coverage) {
            if (c.test(e.method(), e.path())) {
                return true;
            }
        }
        return false;
    }

    /**
     * @return the report of the last check (also of one that failed), or {@code null} before the
     *     first; for a health or info endpoint that shows the exemptions
     */
    public GateReport lastReport() {
        return lastReport;
    }

    /**
     * @return a listener that runs {@link #check(ServletContext)} when the context starts; in a plain
     *     servlet container its exception fails the start of the context
     */
    public ServletContextListener listener() {
        return new ServletContextListener() {
            @Override
            public void contextInitialized(ServletContextEvent event) {
                check(event.getServletContext());
            }
        };
    }

    /**
     * Builds an {@link IdempotencyGate}. Setters check their own argument at once ({@link
     * NullPointerException} for null, {@link IllegalArgumentException} for a bad value); {@link
     * #build()} checks that a filter was given ({@link IllegalStateException}). Not thread-safe.
     */
    public static final class Builder {
        private final List<BiPredicate<String, String>> coverage = new ArrayList<>();
        private final Set<String> filterClassNames = new LinkedHashSet<>();
        private Set<String> methods = DEFAULT_METHODS;
        private final Map<String, String> exemptions = new LinkedHashMap<>();
        private boolean warnOnly;

        private Builder() {}

        /**
         * @param filter a filter whose {@link IdempotencyFilter#covers} decides coverage; repeat for
         *     several filters (an endpoint covered by any of them is covered)
         * @return this builder
         * @throws NullPointerException when it is null
         */
        public Builder filter(IdempotencyFilter filter) {
            Objects.requireNonNull(filter, "filter may not be null");
            coverage.add(filter::covers);
            filterClassNames.add(filter.getClass().getName());
            return this;
        }

        /**
         * @param methods the methods to check, among {@code POST}, {@code PATCH}, {@code PUT} and {@code
         *     DELETE}; default {@link #DEFAULT_METHODS} ({@code POST} and {@code PATCH}); add {@code PUT}
         *     and {@code DELETE} when those endpoints should carry a key too
         * @return this builder
         * @throws NullPointerException when the array or a method is null
         * @throws IllegalArgumentException when none is given or one is not among the four
         */
        public Builder methods(String... methods) {
            Set<String> set = new LinkedHashSet<>();
            for (String m : Objects.requireNonNull(methods, "methods may not be null")) {
                String upper = Objects.requireNonNull(m, "methods may not contain null")
                        .toUpperCase(Locale.ROOT);
                if (!CHECKABLE.contains(upper)) {
                    throw new IllegalArgumentException(
                            "method '" + m + "' cannot be checked; choose among " + CHECKABLE);
                }
                set.add(upper);
            }
            if (set.isEmpty()) {
                throw new IllegalArgumentException("methods may not be empty; the default is POST and PATCH");
            }
            this.methods = set;
            return this;
        }

        /**
         * Exempts one endpoint, for handlers you cannot annotate.
         *
         * @param route {@code METHOD path} exactly as the gate's report lists it ({@code POST
         *     /webhooks/stripe}, {@code PATCH /orders/{id}}), or {@code * path} for every method
         * @param reason why it needs no key; reported at every start
         * @return this builder
         * @throws NullPointerException when an argument is null
         * @throws IllegalArgumentException when the route is not {@code METHOD path} or the reason is
         *     blank
         */
        public Builder exempt(String route, String reason) {
            Objects.requireNonNull(route, "route may not be null");
            Objects.requireNonNull(reason, "reason may not be null");
            String[] parts = route.strip().split("\\s+");
            if (parts.length != 2 || !(parts[0].equals("*") || parts[0].matches("[A-Za-z]+"))) {
                throw new IllegalArgumentException("exemption route '" + route
                        + "' must be 'METHOD path' as the gate's report lists it, e.g. 'POST /webhooks/stripe'");
            }
            if (reason.isBlank()) {
                throw new IllegalArgumentException(
                        "exemption of '" + route + "' needs a reason: say why a retried request cannot do harm there");
            }
            exemptions.put(parts[0].toUpperCase(Locale.ROOT) + " " + parts[1], reason.strip());
            return this;
        }

        /**
         * Exempts several endpoints, e.g. from configuration ({@code route -> reason}); see {@link
         * #exempt(String, String)}.
         *
         * @param exemptions routes and their reasons
         * @return this builder
         * @throws NullPointerException when the map, a route or a reason is null
         * @throws IllegalArgumentException see {@link #exempt(String, String)}
         */
        public Builder exemptAll(Map<String, String> exemptions) {
            Objects.requireNonNull(exemptions, "exemptions may not be null").forEach(this::exempt);
            return this;
        }

        /**
         * @param warnOnly {@code true} to log uncovered endpoints as a warning and let the application
         *     start (for a gradual rollout); default {@code false}: the start fails
         * @return this builder
         */
        public Builder warnOnly(boolean warnOnly) {
            this.warnOnly = warnOnly;
            return this;
        }

        /**
         * @return the gate
         * @throws IllegalStateException when no filter was given
         */
        public IdempotencyGate build() {
            if (coverage.isEmpty()) {
                throw new IllegalStateException(
                        "IdempotencyGate needs the application's IdempotencyFilter: call filter(filter)");
            }
            return new IdempotencyGate(this);
        }
    }
}
