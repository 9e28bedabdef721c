package dev.outbox.http.server.gate;

import dev.outbox.http.server.NotIdempotent;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import org.springframework.core.annotation.AnnotatedElementUtils;
import org.springframework.web.bind.annotation.RequestMethod;
import org.springframework.web.method.HandlerMethod;
import org.springframework.web.servlet.function.RouterFunction;
import org.springframework.web.servlet.mvc.method.RequestMappingInfo;
import org.springframework.web.servlet.mvc.method.annotation.RequestMappingHandlerMapping;

/**
 * The endpoints of a Spring MVC application, for {@link IdempotencyGate#check(java.util.Collection)}.
 * Needs {@code spring-webmvc} on the class path (an optional dependency of this module).
 *
 * <pre>{@code
 * RequestMappingHandlerMapping mapping = context.getBean("requestMappingHandlerMapping", RequestMappingHandlerMapping.class);
 * IdempotencyGate.builder().filter(idempotencyFilter).build().check(SpringMvcEndpoints.of(mapping));
 * }</pre>
 *
 * <p>Paths are the mapping's patterns ({@code /orders/{id}}), which is what the filter sees when
 * the {@code DispatcherServlet} is mapped to {@code /} (Spring Boot's default); give the servlet's
 * path with {@link #of(RequestMappingHandlerMapping, String)} otherwise. A mapping without a method
 * condition takes every method and is listed with method {@code *}. {@link NotIdempotent} is read
 * from the handler method, then from its controller class.
 *
 * <p>Functional routes ({@code RouterFunctions.route().POST("/payments", handler)}) are listed by
 * {@link #of(RouterFunction, String)}; {@link NotIdempotent} cannot mark them, a configured
 * exemption can.
 */
public final class SpringMvcEndpoints {
    private SpringMvcEndpoints() {}

    /**
     * @param mapping the application's annotated-controller mapping, initialised
     * @return its endpoints, one per method and pattern
     * @throws NullPointerException when {@code mapping} is null
     * @throws IllegalArgumentException when a {@link NotIdempotent} has a blank reason
     */
    public static List<Endpoint> of(RequestMappingHandlerMapping mapping) {
        return of(mapping, "");
    }

    /**
     * @param mapping the application's annotated-controller mapping, initialised
     * @param servletPath the path the {@code DispatcherServlet} is mapped under, e.g. {@code /api}
     *     for a mapping {@code /api/*}; empty for {@code /}
     * @return its endpoints, one per method and pattern, with {@code servletPath} in front
     * @throws NullPointerException when an argument is null
     * @throws IllegalArgumentException when a {@link NotIdempotent} has a blank reason
     */
    public static List<Endpoint> of(RequestMappingHandlerMapping mapping, String servletPath) {
        Objects.requireNonNull(mapping, "mapping may not be null");
        Objects.requireNonNull(servletPath, "servletPath may not be null");
        String prefix = prefix(servletPath);
        List<Endpoint> out = new ArrayList<>();
        for (Map.Entry<RequestMappingInfo, HandlerMethod> e :
                mapping.getHandlerMethods().entrySet()) {
            RequestMappingInfo info = e.getKey();
            HandlerMethod handler = e.getValue();
            NotIdempotent exempt = AnnotatedElementUtils.findMergedAnnotation(handler.getMethod(), NotIdempotent.class);
            if (exempt == null) {
                exempt = AnnotatedElementUtils.findMergedAnnotation(handler.getBeanType(), NotIdempotent.class);
            }
            String reason = null;
            if (exempt != null) {
                if (exempt.reason().isBlank()) {
                    throw new IllegalArgumentException("@NotIdempotent on " + handler
                            + " needs a reason: say why a retried request cannot do harm there");
                }
                reason = exempt.reason();
            }
            Set<RequestMethod> methods = info.getMethodsCondition().getMethods();
            String description = handlerName(handler);
            for (String pattern : info.getPatternValues()) {
                String path = prefix + (pattern.startsWith("/") ? pattern : "/" + pattern);
                if (methods.isEmpty()) {
                    out.add(new Endpoint("*", path, description, reason));
                }
                for (RequestMethod m : methods) {
                    out.add(new Endpoint(m.name(), path, description, reason));
                }
            }
        }
        return out;
    }

    /**
     * Lists the routes of a functional router, such as {@code RouterFunctionMapping.getRouterFunction()}:
     * one endpoint per method and path its predicates may match, nested paths joined ({@code
     * route().path("/api", b -> b.POST("/orders", h))} is {@code POST /api/orders}). A header,
     * parameter, content-type, accept or version condition only narrows a route and is passed over; a
     * route without a method condition is listed with method {@code *}, one without a path condition
     * with the path {@code /**} under its nesting; a negated condition is taken to match every method
     * and path (a negated method condition: every other method). Where a predicate the gate cannot take
     * apart (a lambda, an application's own {@code RequestPredicate}) leaves the method or the path
     * open, and for a router function of the application's own, the endpoint is marked {@link
     * Endpoint#unreadable()} and the gate never counts it covered. Static resources (GET and HEAD) are
     * not listed.
     *
     * @param routes the application's router function
     * @param servletPath the path the {@code DispatcherServlet} is mapped under, e.g. {@code /api}
     *     for a mapping {@code /api/*}; empty for {@code /}
     * @return its endpoints, with {@code servletPath} in front
     * @throws NullPointerException when an argument is null
     */
    public static List<Endpoint> of(RouterFunction<?> routes, String servletPath) {
        Objects.requireNonNull(routes, "routes may not be null");
        Objects.requireNonNull(servletPath, "servletPath may not be null");
        return RouterFunctionEndpoints.of(routes, prefix(servletPath));
    }

    private static String prefix(String servletPath) {
        return servletPath.endsWith("/") ? servletPath.substring(0, servletPath.length() - 1) : servletPath;
    }

    /**
     * @param handler a handler method of the mapping
     * @return how its endpoints name it ({@link Endpoint#handler()}): controller class and method name
     */
    public static String handlerName(HandlerMethod handler) {
        return handler.getBeanType().getName() + "#" + handler.getMethod().getName();
    }
}
