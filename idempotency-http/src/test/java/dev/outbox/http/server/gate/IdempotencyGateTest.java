package dev.outbox.http.server.gate;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.outbox.http.server.IdempotencyFilter;
import dev.outbox.http.server.IdempotencyStore;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * The gate's judgement over given endpoints, without a container: which methods it checks, which
 * filter mapping covers an endpoint, how an endpoint it cannot read is treated, and how the report
 * words the fixes.
 */
class IdempotencyGateTest {
    private final IdempotencyStore store =
            IdempotencyStore.builder().dataSource(new PGSimpleDataSource()).build();

    private IdempotencyFilter filter(String... paths) {
        return IdempotencyFilter.builder(store)
                .paths(paths)
                .methods("POST", "PATCH", "PUT", "DELETE")
                .build();
    }

    private static Endpoint endpoint(String method, String path) {
        return new Endpoint(method, path, "handler of " + method + " " + path, null);
    }

    /**
     * methods(...) adds to POST and PATCH, which stay checked: asking for PUT and DELETE no longer drops
     * them. Before, methods("PUT", "DELETE") replaced the default, and an uncovered POST passed.
     */
    @Test
    void methodsAddToPostAndPatch_whichAreAlwaysChecked() {
        IdempotencyGate gate = IdempotencyGate.builder()
                .filter(filter("/orders"))
                .methods("PUT", "DELETE")
                .warnOnly(true)
                .build();

        GateReport r = gate.check(List.of(
                endpoint("POST", "/refunds"),
                endpoint("PATCH", "/profile"),
                endpoint("PUT", "/items"),
                endpoint("DELETE", "/items"),
                endpoint("GET", "/items"),
                endpoint("POST", "/orders")));

        assertThat(r.uncovered())
                .extracting(Endpoint::route)
                .containsExactly("DELETE /items", "PUT /items", "PATCH /profile", "POST /refunds");
        assertThat(r.covered()).extracting(Endpoint::route).containsExactly("POST /orders");
        // naming POST or PATCH, or nothing, changes nothing
        assertThat(IdempotencyGate.builder()
                        .filter(filter("/orders"))
                        .methods()
                        .warnOnly(true)
                        .build()
                        .check(List.of(endpoint("POST", "/refunds"), endpoint("PUT", "/items")))
                        .uncovered())
                .extracting(Endpoint::route)
                .containsExactly("POST /refunds");
    }

    /**
     * Each endpoint is judged against the filters that reach it: a filter mapped to every path does not
     * lend its reach to another filter whose paths hold the endpoint but that runs nowhere.
     */
    @Test
    void anEndpointIsCoveredOnlyByAFilterWhosePathsHoldItAndWhoseMappingReachesIt() {
        IdempotencyFilter orders = filter("/orders/*");
        IdempotencyFilter admin = filter("/admin/*");
        IdempotencyGate gate = IdempotencyGate.builder().warnOnly(true).build();

        GateReport r = gate.check(
                List.of(endpoint("POST", "/orders"), endpoint("POST", "/admin/users"), endpoint("POST", "/refunds")),
                List.of(
                        new IdempotencyGate.FilterMapping(orders, List.of()),
                        new IdempotencyGate.FilterMapping(admin, List.of("/*"))));

        assertThat(r.covered()).extracting(Endpoint::route).containsExactly("POST /admin/users");
        assertThat(r.uncovered()).extracting(Endpoint::route).containsExactly("POST /orders", "POST /refunds");
        assertThat(r.unreached()).extracting(Endpoint::route).containsExactly("POST /orders");

        // the same filter mapped to its paths covers them; a mapping to a shorter path does not reach below it
        assertThat(gate.check(
                                List.of(endpoint("POST", "/orders"), endpoint("POST", "/orders/{id}/lines")),
                                List.of(
                                        new IdempotencyGate.FilterMapping(orders, List.of("/orders")),
                                        new IdempotencyGate.FilterMapping(admin, List.of("/*"))))
                        .unreached())
                .extracting(Endpoint::route)
                .containsExactly("POST /orders/{id}/lines");
        // with no filter running at all, every mutating endpoint is uncovered
        assertThat(gate.check(List.of(endpoint("POST", "/orders")), List.of()).uncovered())
                .extracting(Endpoint::route)
                .containsExactly("POST /orders");
    }

    /**
     * The report tells an endpoint outside every filter's paths (add its path) from one in a filter's
     * paths that no mapping reaches (map the filter to it), and says only what applies.
     */
    @Test
    void anEndpointInTheFiltersPathsThatNoMappingReachesIsToldApart() {
        IdempotencyFilter orders = filter("/orders/*");
        IdempotencyGate gate = IdempotencyGate.builder().build();

        assertThatThrownBy(() -> gate.check(
                        List.of(endpoint("POST", "/orders/{id}/refund")),
                        List.of(new IdempotencyGate.FilterMapping(orders, List.of("/orders")))))
                .isInstanceOf(UncoveredEndpointsException.class)
                .hasMessageContaining("UNCOVERED POST /orders/{id}/refund  (handler of POST /orders/{id}/refund):"
                        + " not reached, in the filter's paths but outside every mapping of the filter")
                .hasMessageContaining("map the filter in the container to the path as well")
                .satisfies(e -> assertThat(e.getMessage()).doesNotContain("add its path"));

        assertThatThrownBy(() -> gate.check(
                        List.of(endpoint("POST", "/refunds")),
                        List.of(new IdempotencyGate.FilterMapping(orders, List.of("/*")))))
                .isInstanceOf(UncoveredEndpointsException.class)
                .hasMessageContaining("add its path to IdempotencyFilter.builder(store).paths(...)")
                .satisfies(e -> assertThat(e.getMessage()).doesNotContain("not reached"));
    }

    /** An endpoint whose method or path could not be read is never counted covered, even by a filter on every path. */
    @Test
    void anUnreadableEndpointIsNeverCounted_coveredButCanBeExempted() {
        IdempotencyFilter everything = filter("/*");
        Endpoint unread = new Endpoint("*", "/**", "functional route custom", null, "the gate cannot read which path");
        IdempotencyGate gate = IdempotencyGate.builder().filter(everything).build();

        assertThatThrownBy(() -> gate.check(List.of(unread)))
                .isInstanceOf(UncoveredEndpointsException.class)
                .hasMessageContaining("UNCOVERED PATCH /**  (functional route custom): unreadable, the gate cannot"
                        + " read which path")
                .hasMessageContaining("UNCOVERED POST /**")
                .hasMessageContaining("give the route its method and path with RequestPredicates")
                .satisfies(e -> assertThat(e.getMessage()).doesNotContain("add its path"));
        GateReport exempted = IdempotencyGate.builder()
                .filter(everything)
                .exempt("* /**", "the catch-all proxy forwards the key to the service behind it")
                .build()
                .check(List.of(unread));
        assertThat(exempted.passed()).isTrue();
        assertThat(exempted.exempted()).extracting(Endpoint::route).containsExactly("PATCH /**", "POST /**");
    }

    /** A framework integration words the fixes in its own configuration's terms, in the log and the exception. */
    @Test
    void theAdviceWordsTheFixes() {
        GateReport.Advice properties = new GateReport.Advice() {
            @Override
            public String cover() {
                return "add its path to app.paths";
            }

            @Override
            public String reach() {
                return "map app.registration to it";
            }

            @Override
            public String exempt(String route) {
                return "app.exemptions[" + route + "]=<reason>";
            }

            @Override
            public String warnOnly() {
                return "app.warn-only=true logs this.";
            }
        };
        IdempotencyGate gate = IdempotencyGate.builder()
                .filter(filter("/orders"))
                .advice(properties)
                .build();

        assertThatThrownBy(() -> gate.check(List.of(endpoint("POST", "/refunds"))))
                .isInstanceOf(UncoveredEndpointsException.class)
                .hasMessageContaining("Cover each uncovered endpoint: add its path to app.paths.")
                .hasMessageContaining("@NotIdempotent(reason = \"...\")")
                .hasMessageContaining("or app.exemptions[POST /refunds]=<reason>. app.warn-only=true logs this.")
                .satisfies(e -> assertThat(e.getMessage())
                        .doesNotContain("IdempotencyFilter.builder")
                        .doesNotContain("IdempotencyGate.builder")
                        .doesNotContain("warnOnly(true)"));
    }
}
