package dev.outbox.spring.internal;

import dev.outbox.http.server.IdempotencyFilter;
import dev.outbox.http.server.gate.Endpoint;
import dev.outbox.http.server.gate.GateReport;
import dev.outbox.http.server.gate.IdempotencyGate;
import dev.outbox.http.server.gate.SpringMvcEndpoints;
import dev.outbox.spring.OutboxProperties;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.springframework.context.ApplicationListener;
import org.springframework.context.event.ContextRefreshedEvent;
import org.springframework.web.servlet.mvc.method.annotation.RequestMappingHandlerMapping;

/**
 * Runs the {@link IdempotencyGate} over the application's Spring MVC endpoints once the context is
 * refreshed; an uncovered POST or PATCH fails the start (or is logged, with {@code warn-only}). The
 * gate is built with the bean, so a refused setting stops the start naming its property.
 */
public final class SpringMvcGate implements ApplicationListener<ContextRefreshedEvent> {
    private static final String PREFIX = "outbox.idempotency.gate.";

    private final IdempotencyGate gate;
    private final String servletPath;
    private final String errorPath;

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
        gate.check(endpoints);
    }

    /**
     * @return the report of the last check (also of one that failed), or {@code null} before the
     *     context was refreshed: the covered, exempted and uncovered endpoints
     */
    public GateReport lastReport() {
        return gate.lastReport();
    }
}
