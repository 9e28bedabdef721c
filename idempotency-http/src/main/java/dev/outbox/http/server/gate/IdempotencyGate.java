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
import java.util.function.Function;
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
 * starter does this once the singletons are created, before the web server listens, with {@link
 * #check(Collection, Collection)} and the filters' mappings it finds).
 *
 * <p><b>Exemptions</b> are explicit and carry a reason: {@link dev.outbox.http.server.NotIdempotent}
 * on the handler, or {@link Builder#exempt(String, String)}. Every exemption is logged at each start.
 * <b>Rollout</b>: {@link Builder#warnOnly(boolean)} logs uncovered endpoints as a warning instead of
 * failing, so a fleet can adopt the gate before every service is clean. Thread-safe once built.
 */
public final class IdempotencyGate {
    private static final Logger LOG = LoggerFactory.getLogger(IdempotencyGate.class);

    /** The methods always checked: the two HTTP does not define as idempotent. */
    public static final Set<String> DEFAULT_METHODS = Set.of("POST", "PATCH");

    private static final List<String> CHECKABLE = List.of("POST", "PATCH", "PUT", "DELETE");

    /** What the gate decided for an endpoint that is not exempt. */
    private enum Verdict {
        COVERED,
        /** a filter's paths and methods cover it, but no mapping of that filter reaches its path */
        UNREACHED,
        UNCOVERED
    }

    private final List<IdempotencyFilter> filters;
    private final Set<String> filterClassNames;
    private final Set<String> methods;
    private final Map<String, String> exemptions;
    private final boolean warnOnly;
    private final GateReport.Advice advice;
    private volatile GateReport lastReport;

    private IdempotencyGate(Builder b) {
        this.filters = List.copyOf(b.filters);
        this.filterClassNames = Set.copyOf(b.filterClassNames);
        this.methods = Set.copyOf(b.methods);
        this.exemptions = Map.copyOf(b.exemptions);
        this.warnOnly = b.warnOnly;
        this.advice = b.advice;
    }

    /** @return a builder */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * One place an {@code Idempotency-Key} filter runs: the filter, and the URL patterns the container
     * maps it to. The filter sees only the requests those patterns reach, whatever its own paths say.
     *
     * @param filter the filter instance
     * @param urlPatterns URL patterns in servlet syntax ({@code /*}, {@code /orders/*}, {@code
     *     /orders}); {@code /*} for a filter mapped to the servlet that serves the endpoints, or one
     *     that sees every request (in a Spring Security filter chain); empty for a filter that is not
     *     mapped at all (its registration turned off), so that the report can tell its endpoints
     *     apart
     */
    public record FilterMapping(IdempotencyFilter filter, List<String> urlPatterns) {
        /** @throws NullPointerException when an argument or a pattern is null */
        public FilterMapping {
            Objects.requireNonNull(filter, "filter may not be null");
            urlPatterns = List.copyOf(Objects.requireNonNull(urlPatterns, "urlPatterns may not be null"));
        }
    }

    /**
     * Checks the given endpoints against the filters given to the builder, each taken to see every
     * request; logs the report (exemptions at INFO, uncovered endpoints at WARN in warn-only mode), and
     * fails when an endpoint is uncovered unless {@link Builder#warnOnly} is set. Endpoints with
     * methods this gate does not check (GET, and PUT/DELETE unless asked for) are ignored; an endpoint
     * with method {@code *} counts once for every checked method.
     *
     * @param endpoints the application's routes
     * @return the report
     * @throws UncoveredEndpointsException when an endpoint is uncovered and the gate is not warn-only
     * @throws IllegalStateException when the builder was given no filter
     */
    public GateReport check(Collection<Endpoint> endpoints) {
        requireFilters();
        return check(endpoints, e -> coveredByAFilter(e) ? Verdict.COVERED : Verdict.UNCOVERED);
    }

    /**
     * As {@link #check(Collection)}, with the filters as the container runs them: an endpoint is
     * covered when the filter of one mapping covers its method and path ({@link
     * IdempotencyFilter#covers}) and a URL pattern of that same mapping reaches its path. The filters
     * given to the builder are not consulted; with no mapping, no endpoint is covered.
     *
     * @param endpoints the application's routes
     * @param mappings every place a filter runs (and the filters that run nowhere, with no pattern)
     * @return the report
     * @throws UncoveredEndpointsException when an endpoint is uncovered and the gate is not warn-only
     * @throws NullPointerException when an argument is null
     */
    public GateReport check(Collection<Endpoint> endpoints, Collection<FilterMapping> mappings) {
        List<FilterMapping> copy = List.copyOf(Objects.requireNonNull(mappings, "mappings may not be null"));
        return check(endpoints, e -> {
            boolean inPaths = false;
            for (FilterMapping m : copy) {
                if (m.filter().covers(e.method(), e.path())) {
                    inPaths = true;
                    if (reaches(m.urlPatterns(), e.path())) {
                        return Verdict.COVERED;
                    }
                }
            }
            return inPaths ? Verdict.UNREACHED : Verdict.UNCOVERED;
        });
    }

    private static boolean reaches(Collection<String> urlPatterns, String path) {
        for (String pattern : urlPatterns) {
            if (ServletEndpoints.patternCovers(pattern, path)) {
                return true;
            }
        }
        return false;
    }

    /**
     * Lists the servlets of {@code context} and checks them (see the class comment). Servlets whose
     * class cannot be loaded, or that are not {@code HttpServlet}s, are assumed to take every method.
     *
     * @param context a started or starting servlet context
     * @return the report
     * @throws UncoveredEndpointsException when an endpoint is uncovered and the gate is not warn-only
     * @throws IllegalStateException when the builder was given no filter
     */
    public GateReport check(ServletContext context) {
        requireFilters();
        List<ServletEndpoints.Mapped> mapped = ServletEndpoints.of(context);
        List<FilterRegistration> registrations = new ArrayList<>();
        for (FilterRegistration r : context.getFilterRegistrations().values()) {
            if (filterClassNames.contains(r.getClassName())) {
                registrations.add(r);
            }
        }
        Map<String, String> servletNames = new LinkedHashMap<>();
        List<Endpoint> endpoints = new ArrayList<>();
        for (ServletEndpoints.Mapped m : mapped) {
            endpoints.add(m.endpoint());
            servletNames.put(m.endpoint().path() + "\n" + m.endpoint().handler(), m.servletName());
        }
        return check(endpoints, e -> {
            if (!coveredByAFilter(e)) {
                return Verdict.UNCOVERED;
            }
            String name = servletNames.get(e.path() + "\n" + e.handler());
            for (FilterRegistration r : registrations) {
                if (name != null && r.getServletNameMappings().contains(name)) {
                    return Verdict.COVERED;
                }
                if (reaches(r.getUrlPatternMappings(), e.path())) {
                    return Verdict.COVERED;
                }
            }
            return Verdict.UNREACHED;
        });
    }

    private void requireFilters() {
        if (filters.isEmpty()) {
            throw new IllegalStateException("IdempotencyGate has no filter to judge coverage by: give it the"
                    + " application's IdempotencyFilter with builder().filter(filter), or check with the filters'"
                    + " mappings, check(endpoints, mappings)");
        }
    }

    private GateReport check(Collection<Endpoint> endpoints, Function<Endpoint, Verdict> judge) {
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
        List<Endpoint> unreached = new ArrayList<>();
        Set<String> used = new LinkedHashSet<>();
        for (Endpoint e : expanded) {
            String configured = exemptions.get(e.route());
            String any = exemptions.get("* " + e.path());
            if (e.exemption() != null) {
                exempted.add(e.withExemption("@NotIdempotent: " + e.exemption()));
            } else if (configured != null || any != null) {
                used.add(configured != null ? e.route() : "* " + e.path());
                exempted.add(e.withExemption("configured: " + (configured != null ? configured : any)));
            } else if (e.unreadable() != null) {
                uncovered.add(e);
            } else {
                switch (judge.apply(e)) {
                    case COVERED -> covered.add(e);
                    case UNREACHED -> {
                        uncovered.add(e);
                        unreached.add(e);
                    }
                    case UNCOVERED -> uncovered.add(e);
                }
            }
        }
        List<String> unused = exemptions.keySet().stream()
                .filter(k -> !used.contains(k))
                .sorted()
                .toList();
        GateReport report = new GateReport(covered, exempted, uncovered, unreached, unused);
        lastReport = report;
        if (report.passed()) {
            LOG.info("{}", report.describe(advice));
        } else if (warnOnly) {
            LOG.warn("{} (warn-only: the start goes on)", report.describe(advice));
        } else {
            String message = report.describe(advice);
            LOG.error("{}", message);
            throw new UncoveredEndpointsException(report, message);
        }
        return report;
    }

    private boolean coveredByAFilter(Endpoint e) {
        for (IdempotencyFilter f : filters) {
            if (f.covers(e.method(), e.path())) {
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
     * @throws IllegalStateException when the builder was given no filter
     */
    public ServletContextListener listener() {
        requireFilters();
        return new ServletContextListener() {
            @Override
            public void contextInitialized(ServletContextEvent event) {
                check(event.getServletContext());
            }
        };
    }

    /**
     * Builds an {@link IdempotencyGate}. Setters check their own argument at once ({@link
     * NullPointerException} for null, {@link IllegalArgumentException} for a bad value). Not
     * thread-safe.
     */
    public static final class Builder {
        private final List<IdempotencyFilter> filters = new ArrayList<>();
        private final Set<String> filterClassNames = new LinkedHashSet<>();
        private final Set<String> methods = new LinkedHashSet<>(DEFAULT_METHODS);
        private final Map<String, String> exemptions = new LinkedHashMap<>();
        private boolean warnOnly;
        private GateReport.Advice advice = GateReport.Advice.inCode();

        private Builder() {}

        /**
         * @param filter a filter whose {@link IdempotencyFilter#covers} decides coverage; repeat for
         *     several filters (an endpoint covered by any of them is covered). Needed by {@link
         *     #check(Collection)}, {@link #check(ServletContext)} and {@link #listener()}; {@link
         *     #check(Collection, Collection)} takes the filters with their mappings instead
         * @return this builder
         * @throws NullPointerException when it is null
         */
        public Builder filter(IdempotencyFilter filter) {
            Objects.requireNonNull(filter, "filter may not be null");
            filters.add(filter);
            filterClassNames.add(filter.getClass().getName());
            return this;
        }

        /**
         * Adds methods to check. {@code POST} and {@code PATCH} ({@link #DEFAULT_METHODS}) are always
         * checked; add {@code PUT} and {@code DELETE} when those endpoints should carry a key too.
         *
         * @param methods methods among {@code POST}, {@code PATCH}, {@code PUT} and {@code DELETE}, any
         *     case; naming POST or PATCH changes nothing
         * @return this builder
         * @throws NullPointerException when the array or a method is null
         * @throws IllegalArgumentException when one is not among the four
         */
        public Builder methods(String... methods) {
            Set<String> set = new LinkedHashSet<>();
            for (String m : Objects.requireNonNull(methods, "methods may not be null")) {
                String upper = Objects.requireNonNull(m, "methods may not contain null")
                        .toUpperCase(Locale.ROOT);
                if (!CHECKABLE.contains(upper)) {
                    throw new IllegalArgumentException("method '" + m + "' cannot be checked; choose among " + CHECKABLE
                            + " (POST and PATCH are always checked)");
                }
                set.add(upper);
            }
            this.methods.addAll(set);
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
            String[] parts = route.strip().split("\\s+", -1);
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
         * @param advice how the report words the fixes in the log and in the exception's message: the
         *     default, {@link GateReport.Advice#inCode()}, names the builders' methods; a framework
         *     integration names its own configuration
         * @return this builder
         * @throws NullPointerException when it is null
         */
        public Builder advice(GateReport.Advice advice) {
            this.advice = Objects.requireNonNull(advice, "advice may not be null");
            return this;
        }

        /** @return the gate */
        public IdempotencyGate build() {
            return new IdempotencyGate(this);
        }
    }
}
