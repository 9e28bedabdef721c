package dev.outbox.spring.internal;

import dev.outbox.http.server.IdempotencyFilter;
import dev.outbox.http.server.gate.Endpoint;
import dev.outbox.http.server.gate.IdempotencyGate;
import dev.outbox.http.server.gate.SpringMvcEndpoints;
import dev.outbox.spring.OutboxProperties;
import java.util.ArrayList;
import java.util.List;
import org.springframework.context.ApplicationListener;
import org.springframework.context.event.ContextRefreshedEvent;
import org.springframework.web.servlet.mvc.method.annotation.RequestMappingHandlerMapping;

/**
 * Runs the {@link IdempotencyGate} over the application's Spring MVC endpoints once the context is
 * refreshed; an uncovered POST or PATCH fails the start (or is logged, with {@code warn-only}).
 */
public final class SpringMvcGate implements ApplicationListener<ContextRefreshedEvent> {
    private final IdempotencyFilter filter;
    private final OutboxProperties.Gate settings;
    private final String servletPath;
    private final String errorPath;

    /**
     * @param filter the application's filter
     * @param settings the gate's settings
     * @param servletPath the DispatcherServlet's path ({@code spring.mvc.servlet.path}), "" for "/"
     * @param errorPath Spring Boot's error page ({@code server.error.path}): its controller answers
     *     every method for requests that already failed, and is not an endpoint of the application
     */
    public SpringMvcGate(
            IdempotencyFilter filter, OutboxProperties.Gate settings, String servletPath, String errorPath) {
        this.filter = filter;
        this.settings = settings;
        this.servletPath = servletPath;
        this.errorPath = errorPath;
    }

    @Override
    public void onApplicationEvent(ContextRefreshedEvent event) {
        List<Endpoint> endpoints = new ArrayList<>();
        for (RequestMappingHandlerMapping mapping : event.getApplicationContext()
                .getBeansOfType(RequestMappingHandlerMapping.class)
                .values()) {
            for (Endpoint endpoint : SpringMvcEndpoints.of(mapping, servletPath)) {
                if (!endpoint.path().equals(errorPath)) {
                    endpoints.add(endpoint);
                }
            }
        }
        IdempotencyGate.builder()
                .filter(filter)
                .methods(settings.getMethods().toArray(String[]::new))
                .exemptAll(settings.getExemptions())
                .warnOnly(settings.isWarnOnly())
                .build()
                .check(endpoints);
    }
}
