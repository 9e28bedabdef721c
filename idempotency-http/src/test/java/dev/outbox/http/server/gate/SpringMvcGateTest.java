package dev.outbox.http.server.gate;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.groups.Tuple.tuple;

import dev.outbox.http.server.IdempotencyFilter;
import dev.outbox.http.server.IdempotencyStore;
import dev.outbox.http.server.NotIdempotent;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.postgresql.ds.PGSimpleDataSource;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.mock.web.MockServletContext;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PatchMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RestController;
import org.springframework.web.context.support.AnnotationConfigWebApplicationContext;
import org.springframework.web.servlet.config.annotation.EnableWebMvc;
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
}
