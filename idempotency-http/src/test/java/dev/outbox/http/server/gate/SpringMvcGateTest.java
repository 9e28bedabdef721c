package dev.outbox.http.server.gate;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.groups.Tuple.tuple;

import dev.outbox.http.server.IdempotencyFilter;
import dev.outbox.http.server.IdempotencyStore;
import dev.outbox.http.server.NotIdempotent;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.postgresql.ds.PGSimpleDataSource;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.http.HttpMethod;
import org.springframework.http.MediaType;
import org.springframework.mock.web.MockServletContext;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PatchMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RestController;
import org.springframework.web.context.support.AnnotationConfigWebApplicationContext;
import org.springframework.web.servlet.config.annotation.EnableWebMvc;
import org.springframework.web.servlet.function.HandlerFunction;
import org.springframework.web.servlet.function.RequestPredicates;
import org.springframework.web.servlet.function.RouterFunction;
import org.springframework.web.servlet.function.RouterFunctions;
import org.springframework.web.servlet.function.ServerResponse;
import org.springframework.web.servlet.mvc.method.annotation.RequestMappingHandlerMapping;

/**
 * The start-up gate over a minimal Spring MVC context ({@code @EnableWebMvc}, two controllers):
 * the endpoints come from {@code RequestMappingHandlerMapping.getHandlerMethods()}, exactly as the
 * Spring Boot starter reads them once the singletons are created.
 */
class SpringMvcGateTest {

    private final IdempotencyFilter filter = IdempotencyFilter.builder(IdempotencyStore.builder()
                    .dataSource(new PGSimpleDataSource())
                    .build())
            .paths("/orders/*")
            .build();

    @RestController
    static class OrdersController {
        @PostMapping("/orders")
        String create() {
            return "created";
        }

        @PatchMapping("/orders/{id}")
        String change(@PathVariable("id") String id) {
            return "changed";
        }

        @GetMapping("/orders/{id}")
        String read(@PathVariable("id") String id) {
            return "order";
        }
    }

    @RestController
    static class RefundsController {
        @PostMapping("/refunds")
        String refund() {
            return "refunded";
        }
    }

    @RestController
    static class ExemptRefundsController {
        @PostMapping("/refunds")
        @NotIdempotent(reason = "refunds carry the provider's refund id and are deduplicated there")
        String refund() {
            return "refunded";
        }

        /** No method condition: takes every method. */
        @RequestMapping("/rpc")
        String rpc() {
            return "rpc";
        }
    }

    @Configuration
    @EnableWebMvc
    static class Uncovered {
        @Bean
        OrdersController orders() {
            return new OrdersController();
        }

        @Bean
        RefundsController refunds() {
            return new RefundsController();
        }
    }

    @Configuration
    @EnableWebMvc
    static class Exempted {
        @Bean
        OrdersController orders() {
            return new OrdersController();
        }

        @Bean
        ExemptRefundsController refunds() {
            return new ExemptRefundsController();
        }
    }

    private static List<Endpoint> endpoints(Class<?> config) {
        return endpoints(config, "");
    }

    private static List<Endpoint> endpoints(Class<?> config, String servletPath) {
        try (AnnotationConfigWebApplicationContext context = new AnnotationConfigWebApplicationContext()) {
            context.setServletContext(new MockServletContext());
            context.register(config);
            context.refresh();
            return SpringMvcEndpoints.of(
                    context.getBean("requestMappingHandlerMapping", RequestMappingHandlerMapping.class), servletPath);
        }
    }

    @Test
    void anUncoveredPostMappingFailsTheGateAndIsNamed() {
        List<Endpoint> endpoints = endpoints(Uncovered.class);
        IdempotencyGate gate = IdempotencyGate.builder().filter(filter).build();

        assertThatThrownBy(() -> gate.check(endpoints))
                .isInstanceOf(UncoveredEndpointsException.class)
                .hasMessageContaining("UNCOVERED POST /refunds")
                .hasMessageContaining(RefundsController.class.getName() + "#refund")
                .satisfies(e -> {
                    GateReport r = ((UncoveredEndpointsException) e).report();
                    assertThat(r.uncovered()).extracting(Endpoint::route).containsExactly("POST /refunds");
                    assertThat(r.covered())
                            .extracting(Endpoint::route)
                            .containsExactlyInAnyOrder("POST /orders", "PATCH /orders/{id}");
                });
    }

    @Test
    void anAnnotatedHandlerIsExemptAndReported_aMappingWithoutMethodsCountsForEach() {
        List<Endpoint> endpoints = endpoints(Exempted.class);

        GateReport r = IdempotencyGate.builder()
                .filter(filter)
                .exempt("* /rpc", "internal JSON-RPC, read-only calls")
                .build()
                .check(endpoints);

        assertThat(r.passed()).isTrue();
        assertThat(r.exempted())
                .extracting(Endpoint::route, Endpoint::exemption)
                .containsExactlyInAnyOrder(
                        tuple(
                                "POST /refunds",
                                "@NotIdempotent: refunds carry the provider's refund id and are deduplicated there"),
                        tuple("PATCH /rpc", "configured: internal JSON-RPC, read-only calls"),
                        tuple("POST /rpc", "configured: internal JSON-RPC, read-only calls"));
    }

    @Test
    void theDispatcherServletsPathIsPutInFront() {
        assertThat(endpoints(Uncovered.class, "/api"))
                .extracting(Endpoint::route)
                .contains("POST /api/orders", "POST /api/refunds");
    }

    private static final HandlerFunction<ServerResponse> OK =
            request -> ServerResponse.ok().build();

    /**
     * Functional routes are endpoints too: their methods and paths are read from the predicates, nested
     * paths joined, the DispatcherServlet's path in front; conditions that only narrow a route (accept,
     * content type, a parameter, a predicate of the application's own beside a method and a path) are
     * passed over; a route without a path takes every path below its nesting.
     */
    @Test
    void functionalRoutesAreListedByMethodAndPath() {
        RouterFunction<ServerResponse> routes = RouterFunctions.route()
                .POST("/payments", OK)
                .PATCH("/payments/{id}", RequestPredicates.contentType(MediaType.APPLICATION_JSON), OK)
                .GET("/payments/{id}", OK)
                .path(
                        "/api",
                        api -> api.POST("/orders", OK)
                                .nest(
                                        RequestPredicates.accept(MediaType.APPLICATION_JSON),
                                        json -> json.PUT("/carts", OK)))
                .POST("/refunds", request -> request.param("dryRun").isEmpty(), OK)
                .route(RequestPredicates.method(HttpMethod.DELETE).and(RequestPredicates.path("/items/{id}")), OK)
                .add(RouterFunctions.route(
                        RequestPredicates.path("/a")
                                .or(RequestPredicates.path("/b"))
                                .and(RequestPredicates.method(HttpMethod.POST)),
                        OK))
                .nest(RequestPredicates.path("/webhooks"), hooks -> hooks.POST(OK))
                .build();

        assertThat(SpringMvcEndpoints.of(routes, "/svc"))
                .allSatisfy(e -> assertThat(e.unreadable()).isNull())
                .extracting(Endpoint::route)
                .containsExactly(
                        "POST /svc/payments",
                        "PATCH /svc/payments/{id}",
                        "GET /svc/payments/{id}",
                        "POST /svc/api/orders",
                        "PUT /svc/api/carts",
                        "POST /svc/refunds",
                        "DELETE /svc/items/{id}",
                        "POST /svc/a",
                        "POST /svc/b",
                        "POST /svc/webhooks/**");
    }

    /**
     * Where a predicate the gate cannot take apart leaves the method or the path open, and for a router
     * function of the application's own, the endpoint is marked unreadable and named: the gate never
     * counts it covered, even with a filter on every path. A negated method condition takes every other
     * method.
     */
    @Test
    void aFunctionalRouteWhoseMethodOrPathCannotBeReadIsUncoveredAndNamed() {
        RouterFunction<ServerResponse> routes = RouterFunctions.route()
                .route(request -> request.path().startsWith("/legacy"), OK)
                .POST(request -> request.path().startsWith("/rpc"), OK)
                .route(RequestPredicates.method(HttpMethod.GET).negate().and(RequestPredicates.path("/forms")), OK)
                .add(request -> Optional.empty())
                .build();

        List<Endpoint> endpoints = SpringMvcEndpoints.of(routes, "");
        assertThat(endpoints)
                .extracting(Endpoint::route, e -> e.unreadable() != null)
                .containsExactly(
                        tuple("* /**", true),
                        tuple("POST /**", true),
                        tuple("DELETE /forms", false),
                        tuple("HEAD /forms", false),
                        tuple("OPTIONS /forms", false),
                        tuple("PATCH /forms", false),
                        tuple("POST /forms", false),
                        tuple("PUT /forms", false),
                        tuple("TRACE /forms", false),
                        tuple("* /**", true));
        assertThat(endpoints.get(0).unreadable())
                .isEqualTo("the gate cannot read which method and path its predicate takes");
        assertThat(endpoints.get(1).unreadable()).isEqualTo("the gate cannot read which path its predicate takes");
        assertThat(endpoints.get(9).unreadable()).startsWith("a router function of the application's own");

        IdempotencyFilter everything = IdempotencyFilter.builder(IdempotencyStore.builder()
                        .dataSource(new PGSimpleDataSource())
                        .build())
                .build();
        assertThatThrownBy(() ->
                        IdempotencyGate.builder().filter(everything).build().check(endpoints))
                .isInstanceOf(UncoveredEndpointsException.class)
                .hasMessageContaining("UNCOVERED POST /**  (functional route ")
                .hasMessageContaining("unreadable, the gate cannot read which path its predicate takes")
                .satisfies(e -> assertThat(
                                ((UncoveredEndpointsException) e).report().covered())
                        .extracting(Endpoint::route)
                        .containsExactly("PATCH /forms", "POST /forms"));
    }
}
