package dev.outbox.spring.internal;

import dev.outbox.http.server.IdempotencyFilter;
import dev.outbox.http.server.gate.Endpoint;
import dev.outbox.http.server.gate.GateReport;
import dev.outbox.http.server.gate.IdempotencyGate;
import dev.outbox.http.server.gate.SpringMvcEndpoints;
import dev.outbox.spring.OutboxProperties;
import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.HashSet;
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
import org.springframework.web.context.request.async.DeferredResult;
import org.springframework.web.context.request.async.WebAsyncTask;
import org.springframework.web.method.HandlerMethod;
import org.springframework.web.servlet.mvc.method.annotation.RequestMappingHandlerMapping;
import org.springframework.web.servlet.mvc.method.annotation.ResponseBodyEmitter;
import org.springframework.web.servlet.mvc.method.annotation.StreamingResponseBody;

/**
 * Runs the {@link IdempotencyGate} over the application's Spring MVC endpoints once every singleton
 * is created, before the web server starts listening and the Kafka listener containers start (both
 * start with the context's lifecycle, after this); an uncovered POST or PATCH fails the start (or is logged, with {@code warn-only}). So
 * does a covered endpoint whose handler answers asynchronously ({@code Callable}, {@code
 * DeferredResult}, a {@code CompletionStage}, a streaming body, a reactive type): its work would run
 * on another thread, outside the key's transaction. The gate is built with the bean, so a refused
 * setting stops the start naming its property. An endpoint counts as covered only where a URL pattern of
 * an enabled registration of the filter (the starter's, or the application's own that replaces it) reaches
 * its path too: the filter never sees the other requests, whatever {@code outbox.idempotency.paths} says.
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

    private final IdempotencyGate gate;
    private final String servletPath;
    private final String errorPath;
    private final boolean warnOnly;
    private ApplicationContext context;

    /**
     * @param filter the application's filter
     * @param settings the gate's settings
     * @param named names a refused setting by its property
     * @param servletPath the DispatcherServlet's path ({@code spring.mvc.servlet.path}), "" for "/"
     * @param errorPath Spring Boot's error page ({@code server.error.path}): its controller answers
     *     every method for requests that already failed, and is not an endpoint of the application
     * @throws IllegalArgumentException when a setting is refused; the message starts with {@code
     *     <property>=<value>: }
     */
    public SpringMvcGate(
            IdempotencyFilter filter,
            OutboxProperties.Gate settings,
            NamedSettings named,
            String servletPath,
            String errorPath) {
        IdempotencyGate.Builder builder = IdempotencyGate.builder().filter(filter);
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
        this.gate = builder.warnOnly(settings.isWarnOnly()).build();
        this.warnOnly = settings.isWarnOnly();
        this.servletPath = servletPath;
        this.errorPath = errorPath;
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
     * @return the URL patterns the enabled registrations of an Idempotency-Key filter map it to: the
     *     starter's (the configured paths) or the application's own, which replaces it; {@code /*} for one mapped to
     *     servlets by name (the DispatcherServlet serves every endpoint checked here) or to nothing
     *     (Spring Boot maps it to every path then), or for one in a Spring Security filter chain. None
     *     when neither has it: no request reaches it, and no endpoint is covered
     */
    private List<String> filterUrlPatterns() {
        List<String> patterns = new ArrayList<>();
        for (FilterRegistrationBean<?> r :
                context.getBeansOfType(FilterRegistrationBean.class).values()) {
            if (!(r.getFilter() instanceof IdempotencyFilter) || !r.isEnabled()) {
                continue;
            }
            if (!r.getServletNames().isEmpty() || r.getUrlPatterns().isEmpty()) {
                patterns.add("/*");
            } else {
                patterns.addAll(r.getUrlPatterns());
            }
        }
        if (inSecurityFilterChain()) {
            // placed in a Spring Security filter chain (its servlet registration turned off, so that it does not
            // run twice): it sees that chain's requests, every path as far as the gate can tell
            patterns.add("/*");
        }
        return patterns;
    }

    /** @return whether a Spring Security filter chain of the context holds an Idempotency-Key filter */
    private boolean inSecurityFilterChain() {
        ClassLoader loader = context.getClassLoader();
        if (!ClassUtils.isPresent(SECURITY_FILTER_CHAIN, loader)) {
            return false;
        }
        Class<?> type = ClassUtils.resolveClassName(SECURITY_FILTER_CHAIN, loader);
        Method filters = ReflectionUtils.findMethod(type, "getFilters");
        if (filters == null) {
            return false;
        }
        for (Object chain : context.getBeansOfType(type).values()) {
            if (ReflectionUtils.invokeMethod(filters, chain) instanceof List<?> list
                    && list.stream().anyMatch(f -> f instanceof IdempotencyFilter)) {
                return true;
            }
        }
        return false;
    }

    @Override
    public void afterSingletonsInstantiated() {
        List<Endpoint> endpoints = new ArrayList<>();
        Set<String> asyncHandlers = new HashSet<>();
        for (RequestMappingHandlerMapping mapping :
                context.getBeansOfType(RequestMappingHandlerMapping.class).values()) {
            for (Endpoint endpoint : SpringMvcEndpoints.of(mapping, servletPath)) {
                if (!endpoint.path().equals(errorPath)) {
                    endpoints.add(endpoint);
                }
            }
            for (HandlerMethod handler : mapping.getHandlerMethods().values()) {
                if (answersAsynchronously(handler)) {
                    asyncHandlers.add(SpringMvcEndpoints.handlerName(handler));
                }
            }
        }
        GateReport report = gate.check(endpoints, filterUrlPatterns());
        List<String> async = report.covered().stream()
                .filter(e -> asyncHandlers.contains(e.handler()))
                .map(e -> e.route() + " (" + e.handler() + ")")
                .toList();
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
