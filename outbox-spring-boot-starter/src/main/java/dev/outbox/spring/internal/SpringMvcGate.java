package dev.outbox.spring.internal;

import dev.outbox.http.server.IdempotencyFilter;
import dev.outbox.http.server.gate.Endpoint;
import dev.outbox.http.server.gate.GateReport;
import dev.outbox.http.server.gate.IdempotencyGate;
import dev.outbox.http.server.gate.SpringMvcEndpoints;
import dev.outbox.spring.OutboxProperties;
import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Future;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.SmartInitializingSingleton;
import org.springframework.boot.web.servlet.FilterRegistrationBean;
import org.springframework.context.ApplicationContext;
import org.springframework.context.ApplicationContextAware;
import org.springframework.core.ReactiveAdapterRegistry;
import org.springframework.core.ResolvableType;
import org.springframework.http.HttpEntity;
import org.springframework.util.ClassUtils;
import org.springframework.util.ReflectionUtils;
import org.springframework.web.bind.annotation.RequestMethod;
import org.springframework.web.context.request.async.DeferredResult;
import org.springframework.web.context.request.async.WebAsyncTask;
import org.springframework.web.method.HandlerMethod;
import org.springframework.web.servlet.function.support.RouterFunctionMapping;
import org.springframework.web.servlet.mvc.method.RequestMappingInfo;
import org.springframework.web.servlet.mvc.method.annotation.RequestMappingHandlerMapping;
import org.springframework.web.servlet.mvc.method.annotation.ResponseBodyEmitter;
import org.springframework.web.servlet.mvc.method.annotation.StreamingResponseBody;

/**
 * Runs the {@link IdempotencyGate} over the application's Spring MVC endpoints (annotated controllers
 * and functional routes) once every singleton is created, before the web server starts listening and
 * the Kafka listener containers start (both start with the context's lifecycle, after this); an
 * uncovered POST or PATCH fails the start (or is logged, with {@code warn-only}), also when {@code
 * outbox.idempotency.paths} is not set and no filter runs at all. So does a covered endpoint whose
 * handler answers asynchronously ({@code Callable}, {@code DeferredResult}, a {@code CompletionStage},
 * a streaming body, a reactive type): its work would run on another thread, outside the key's
 * transaction. The gate's settings are checked with the bean, so a refused setting stops the start
 * naming its property.
 *
 * <p>Each endpoint is judged against the filters as they run: a filter covers it when its own paths
 * and methods cover it and a URL pattern of one of its enabled registrations reaches its path (the
 * starter's registration, or the application's own that replaces it), or when it sits in a Spring
 * Security filter chain (every path, as far as the gate can tell). An {@code IdempotencyFilter} bean
 * that no registration holds is registered by Spring Boot on every path. The report names the
 * properties that fix what it finds.
 */
public final class SpringMvcGate implements SmartInitializingSingleton, ApplicationContextAware {
    private static final String PREFIX = "outbox.idempotency.gate.";
    private static final String SECURITY_FILTER_CHAIN = "org.springframework.security.web.SecurityFilterChain";

    private static final Logger LOG = LoggerFactory.getLogger(SpringMvcGate.class);
    private static final List<Class<?>> ASYNC_TYPES = List.of(
            Callable.class,
            CompletionStage.class,
            Future.class,
            WebAsyncTask.class,
            DeferredResult.class,
            ResponseBodyEmitter.class,
            StreamingResponseBody.class);

    private final IdempotencyGate.Builder settings;
    private final String starterFilterBean;
    private final String servletPrefix;
    private final String errorPath;
    private final boolean warnOnly;
    private volatile IdempotencyGate gate;
    private ApplicationContext context;

    /**
     * @param settings the gate's settings
     * @param named names a refused setting by its property
     * @param starterFilterBean the bean name of the starter's filter, which {@code
     *     outbox.idempotency.paths} configures
     * @param servletPath the DispatcherServlet's path as configured ({@code spring.mvc.servlet.path}:
     *     {@code /} or empty for the root, {@code /api} or {@code /api/}); the endpoints' paths start
     *     with it ({@link #servletPrefix})
     * @param errorPath Spring Boot's error page as configured ({@code server.error.path}, {@code
     *     /error} by default), under the DispatcherServlet's path: its controller answers every method
     *     for requests that already failed, and is not an endpoint of the application
     * @throws IllegalArgumentException when a setting is refused; the message starts with {@code
     *     <property>=<value>: }
     */
    public SpringMvcGate(
            OutboxProperties.Gate settings,
            NamedSettings named,
            String starterFilterBean,
            String servletPath,
            String errorPath) {
        IdempotencyGate.Builder builder = IdempotencyGate.builder();
        named.setList(PREFIX + "methods", settings.getMethods(), m -> builder.methods(m.toArray(String[]::new)));
        for (Map.Entry<String, String> exemption : settings.getExemptions().entrySet()) {
            String route = exemption.getKey();
            String property = PREFIX + "exemptions[" + route + "]";
            try {
                builder.exempt(route, exemption.getValue());
            } catch (IllegalArgumentException | NullPointerException e) {
                throw named.refused(property, exemption.getValue(), e.getMessage() + escapeHint(route));
            }
        }
        this.settings = builder.warnOnly(settings.isWarnOnly());
        this.gate = builder.build();
        this.warnOnly = settings.isWarnOnly();
        this.starterFilterBean = starterFilterBean;
        this.servletPrefix = servletPrefix(servletPath);
        this.errorPath = under(servletPrefix, errorPath);
    }

    /**
     * @param servletPath the DispatcherServlet's path as configured ({@code spring.mvc.servlet.path})
     * @return what its endpoints' paths start with: the path without its trailing slash, as {@link
     *     SpringMvcEndpoints} and Spring Boot's {@code DispatcherServletPath.getPrefix()} take it ({@code
     *     /api} for {@code /api/}, empty for {@code /})
     */
    static String servletPrefix(String servletPath) {
        return servletPath.endsWith("/") ? servletPath.substring(0, servletPath.length() - 1) : servletPath;
    }

    /**
     * @param prefix a {@link #servletPrefix}
     * @param pattern a path or pattern the DispatcherServlet maps ({@code /orders}, {@code orders})
     * @return the endpoint's path as {@link SpringMvcEndpoints} lists it: {@code prefix}, then {@code
     *     pattern} with a leading slash
     */
    static String under(String prefix, String pattern) {
        return prefix + (pattern.startsWith("/") ? pattern : "/" + pattern);
    }

    /**
     * @return how to write a route with a space, when {@code route} has none: in a .properties file
     *     an unescaped space ends the key, which then holds the method only
     */
    private static String escapeHint(String route) {
        if (route.strip().contains(" ")) {
            return "";
        }
        return "; in a .properties file escape the space between method and path,"
                + " outbox.idempotency.gate.exemptions[POST\\ /webhooks/stripe]=<reason>, in YAML quote the key,"
                + " \"[POST /webhooks/stripe]\": <reason>";
    }

    @Override
    public void setApplicationContext(ApplicationContext context) {
        this.context = context;
    }

    /**
     * @return every place an Idempotency-Key filter runs: each enabled registration of one with its URL
     *     patterns ({@code /*} for one mapped to servlets by name, as the DispatcherServlet serves every
     *     endpoint checked here, or to nothing, which Spring Boot maps to every path), each one in a
     *     Spring Security filter chain with {@code /*}, each filter bean no registration holds with
     *     {@code /*} (Spring Boot registers it on every path); and, with no pattern, the filters of
     *     registrations turned off that run nowhere else, so that the report tells their endpoints apart
     */
    private List<IdempotencyGate.FilterMapping> filterMappings() {
        List<IdempotencyGate.FilterMapping> mappings = new ArrayList<>();
        Set<IdempotencyFilter> held = Collections.newSetFromMap(new IdentityHashMap<>());
        Set<IdempotencyFilter> placed = Collections.newSetFromMap(new IdentityHashMap<>());
        for (FilterRegistrationBean<?> r :
                context.getBeansOfType(FilterRegistrationBean.class).values()) {
            if (!(r.getFilter() instanceof IdempotencyFilter filter)) {
                continue;
            }
            held.add(filter);
            if (!r.isEnabled()) {
                continue;
            }
            placed.add(filter);
            if (!r.getServletNames().isEmpty() || r.getUrlPatterns().isEmpty()) {
                mappings.add(new IdempotencyGate.FilterMapping(filter, List.of("/*")));
            } else {
                mappings.add(new IdempotencyGate.FilterMapping(filter, List.copyOf(r.getUrlPatterns())));
            }
        }
        for (IdempotencyFilter filter : inSecurityFilterChains()) {
            // placed in a Spring Security filter chain (its servlet registration turned off, so that it does not
            // run twice): it sees that chain's requests, every path as far as the gate can tell
            placed.add(filter);
            mappings.add(new IdempotencyGate.FilterMapping(filter, List.of("/*")));
        }
        for (IdempotencyFilter filter :
                context.getBeansOfType(IdempotencyFilter.class).values()) {
            if (!held.contains(filter)) {
                placed.add(filter);
                mappings.add(new IdempotencyGate.FilterMapping(filter, List.of("/*")));
            }
        }
        for (IdempotencyFilter filter : held) {
            if (!placed.contains(filter)) {
                mappings.add(new IdempotencyGate.FilterMapping(filter, List.of()));
            }
        }
        return mappings;
    }

    /** @return the Idempotency-Key filters the Spring Security filter chains of the context hold */
    private List<IdempotencyFilter> inSecurityFilterChains() {
        ClassLoader loader = context.getClassLoader();
        if (!ClassUtils.isPresent(SECURITY_FILTER_CHAIN, loader)) {
            return List.of();
        }
        Class<?> type = ClassUtils.resolveClassName(SECURITY_FILTER_CHAIN, loader);
        Method filters = ReflectionUtils.findMethod(type, "getFilters");
        if (filters == null) {
            return List.of();
        }
        List<IdempotencyFilter> found = new ArrayList<>();
        for (Object chain : context.getBeansOfType(type).values()) {
            if (ReflectionUtils.invokeMethod(filters, chain) instanceof List<?> list) {
                for (Object f : list) {
                    if (f instanceof IdempotencyFilter filter) {
                        found.add(filter);
                    }
                }
            }
        }
        return found;
    }

    @Override
    public void afterSingletonsInstantiated() {
        List<Endpoint> endpoints = new ArrayList<>();
        // the endpoints of the handler methods that answer asynchronously, each of its own routes: a
        // synchronous method of the same name (a POST beside a streaming GET) is another handler
        Map<String, HandlerMethod> asyncEndpoints = new HashMap<>();
        for (RequestMappingHandlerMapping mapping :
                context.getBeansOfType(RequestMappingHandlerMapping.class).values()) {
            for (Endpoint endpoint : SpringMvcEndpoints.of(mapping, servletPrefix)) {
                if (!endpoint.path().equals(errorPath)) {
                    endpoints.add(endpoint);
                }
            }
            for (Map.Entry<RequestMappingInfo, HandlerMethod> e :
                    mapping.getHandlerMethods().entrySet()) {
                if (answersAsynchronously(e.getValue())) {
                    for (String key : endpointKeys(e.getKey(), e.getValue())) {
                        asyncEndpoints.put(key, e.getValue());
                    }
                }
            }
        }
        for (RouterFunctionMapping mapping :
                context.getBeansOfType(RouterFunctionMapping.class).values()) {
            if (mapping.getRouterFunction() != null) {
                endpoints.addAll(SpringMvcEndpoints.of(mapping.getRouterFunction(), servletPrefix));
            }
        }
        List<IdempotencyGate.FilterMapping> mappings = filterMappings();
        IdempotencyGate checking =
                settings.advice(new StarterAdvice(filtersBy(mappings))).build();
        gate = checking;
        GateReport report = checking.check(endpoints, mappings);
        List<String> async = new ArrayList<>();
        for (Endpoint e : report.covered()) {
            // the gate lists an endpoint of every method (*) once per method it checks
            HandlerMethod handler = asyncEndpoints.get(endpointKey(e.method(), e.path(), e.handler()));
            if (handler == null) {
                handler = asyncEndpoints.get(endpointKey("*", e.path(), e.handler()));
            }
            if (handler != null) {
                async.add(e.route() + " (" + handler + ")");
            }
        }
        if (!async.isEmpty()) {
            String message = "Idempotency-Key filter covers endpoints whose handlers answer asynchronously: " + async
                    + ". Their work would run on another thread, outside the key's transaction, and again on every"
                    + " retry; the filter refuses them at run time, after a handler returning a CompletionStage has"
                    + " already started its work. Answer synchronously, or take the endpoint off outbox.idempotency.paths";
            if (warnOnly) {
                LOG.warn(message);
            } else {
                throw new IllegalStateException(message);
            }
        }
    }

    /** Whose filters run: the starter's (configured by its properties), the application's own, or none. */
    private enum FiltersBy {
        STARTER,
        APPLICATION,
        NONE
    }

    private FiltersBy filtersBy(List<IdempotencyGate.FilterMapping> mappings) {
        if (context.containsBean(starterFilterBean)) {
            return FiltersBy.STARTER;
        }
        return mappings.isEmpty() ? FiltersBy.NONE : FiltersBy.APPLICATION;
    }

    /** The report's fixes in the starter's terms: its properties. */
    private record StarterAdvice(FiltersBy filters) implements GateReport.Advice {
        private static final String PATH_FORMS = " (an exact path, or a prefix such as /orders/*)";
        private static final String METHODS = "outbox.idempotency.methods, the methods the filter protects (default"
                + " POST, PATCH; outbox.idempotency.gate.methods only adds methods the gate checks)";

        @Override
        public String cover() {
            return switch (filters) {
                case STARTER ->
                    "add its path to outbox.idempotency.paths" + PATH_FORMS + " and its method to " + METHODS;
                case NONE ->
                    "no Idempotency-Key filter runs in this application, as outbox.idempotency.paths is not set:"
                            + " set it to the endpoint's path" + PATH_FORMS + ", which turns the starter's filter on"
                            + " for the methods of " + METHODS;
                case APPLICATION ->
                    "add its path and method to the paths(...) and methods(...) of the application's own"
                            + " IdempotencyFilter, which replaces the starter's (outbox.idempotency.paths does not"
                            + " apply to it), and map its registration to the path";
            };
        }

        @Override
        public String reach() {
            return "the starter registers its filter on outbox.idempotency.paths, unless the application registers"
                    + " an IdempotencyFilter itself (a FilterRegistrationBean<IdempotencyFilter> of its own turns the"
                    + " starter's registration off): register the filter whose paths hold the endpoint on its path"
                    + " (an enabled registration with a URL pattern that reaches it), or remove the application's"
                    + " registration so that the starter's applies";
        }

        @Override
        public String exempt(String route) {
            return "outbox.idempotency.gate.exemptions[" + route.replace(" ", "\\ ")
                    + "]=<reason> in application.properties (in YAML the key quoted, \"[" + route + "]\": <reason>)";
        }

        @Override
        public String warnOnly() {
            return "While rolling out, outbox.idempotency.gate.warn-only=true logs this instead of failing the"
                    + " start; outbox.idempotency.gate.enabled=false turns the gate off.";
        }
    }

    /**
     * @return the keys ({@link #endpointKey}) of the endpoints {@link SpringMvcEndpoints} lists for
     *     {@code handler} under {@code info}: one per pattern and method, method {@code *} for a mapping
     *     without a method condition
     */
    private List<String> endpointKeys(RequestMappingInfo info, HandlerMethod handler) {
        String name = SpringMvcEndpoints.handlerName(handler);
        Set<RequestMethod> methods = info.getMethodsCondition().getMethods();
        List<String> keys = new ArrayList<>();
        for (String pattern : info.getPatternValues()) {
            String path = under(servletPrefix, pattern);
            if (methods.isEmpty()) {
                keys.add(endpointKey("*", path, name));
            }
            for (RequestMethod m : methods) {
                keys.add(endpointKey(m.name(), path, name));
            }
        }
        return keys;
    }

    /** @return the key of the endpoint of {@code method} and {@code path} that the named handler serves */
    private static String endpointKey(String method, String path, String handlerName) {
        return method + ' ' + path + ' ' + handlerName;
    }

    /** @return whether the handler's answer is processed on another thread than the request's */
    private static boolean answersAsynchronously(HandlerMethod handler) {
        ResolvableType type = ResolvableType.forMethodReturnType(handler.getMethod());
        Class<?> raw = type.resolve(Object.class);
        if (HttpEntity.class.isAssignableFrom(raw)) {
            raw = type.as(HttpEntity.class).getGeneric(0).resolve(Object.class);
        }
        for (Class<?> async : ASYNC_TYPES) {
            if (async.isAssignableFrom(raw)) {
                return true;
            }
        }
        return ReactiveAdapterRegistry.getSharedInstance().getAdapter(raw) != null;
    }

    /**
     * @return the report of the last check (also of one that failed), or {@code null} before the
     *     singletons were created: the covered, exempted and uncovered endpoints
     */
    public GateReport lastReport() {
        return gate.lastReport();
    }
}
