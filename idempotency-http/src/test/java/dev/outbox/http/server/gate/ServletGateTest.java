package dev.outbox.http.server.gate;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.groups.Tuple.tuple;

import dev.outbox.http.server.IdempotencyFilter;
import dev.outbox.http.server.IdempotencyStore;
import dev.outbox.http.server.NotIdempotent;
import jakarta.servlet.DispatcherType;
import jakarta.servlet.ServletContextEvent;
import jakarta.servlet.ServletContextListener;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.EnumSet;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import org.eclipse.jetty.ee10.servlet.FilterHolder;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * The start-up gate in a plain servlet container (embedded Jetty 12): an application with one
 * covered and one uncovered POST does not start and names the uncovered one; exempted, it starts
 * and reports the exemption. No request here reaches the database (the filter answers 400 for a
 * missing key before the store), so the store's data source points nowhere.
 */
class ServletGateTest {

    private final IdempotencyStore store =
            IdempotencyStore.builder().dataSource(new PGSimpleDataSource()).build();
    private Server server;

    @AfterEach
    void stop() throws Exception {
        if (server != null) {
            server.stop();
        }
    }

    /** Covered by the filter's paths: POST /orders. */
    static final class OrdersServlet extends HttpServlet {
        @Override
        protected void doPost(HttpServletRequest req, HttpServletResponse resp) {
            resp.setStatus(201);
        }
    }

    /** Not covered: POST /refunds. */
    static class RefundsServlet extends HttpServlet {
        @Override
        protected void doPost(HttpServletRequest req, HttpServletResponse resp) {
            resp.setStatus(202);
        }
    }

    @NotIdempotent(reason = "refunds are deduplicated by the payment provider's refund id")
    static final class ExemptRefundsServlet extends RefundsServlet {}

    /** Read-only: never a mutating endpoint. */
    static final class ReportsServlet extends HttpServlet {
        @Override
        protected void doGet(HttpServletRequest req, HttpServletResponse resp) {
            resp.setStatus(200);
        }
    }

    /** Takes every method through service(): counted for POST and PATCH. */
    static final class CatchAllServlet extends HttpServlet {
        @Override
        protected void service(HttpServletRequest req, HttpServletResponse resp) {
            resp.setStatus(204);
        }
    }

    /** Exempts only its doPut; its doDelete stays a mutating endpoint when DELETE is checked. */
    static final class ItemsServlet extends HttpServlet {
        @Override
        @NotIdempotent(reason = "PUT replaces the whole item: repeating it is harmless")
        protected void doPut(HttpServletRequest req, HttpServletResponse resp) {}

        @Override
        protected void doDelete(HttpServletRequest req, HttpServletResponse resp) {}
    }

    private IdempotencyFilter ordersFilter() {
        return IdempotencyFilter.builder(store).paths("/orders").build();
    }

    /** Starts Jetty with the filter on /*, the given servlets, and a listener running the gate. */
    private URI start(
            IdempotencyFilter filter,
            String filterMapping,
            IdempotencyGate gate,
            AtomicReference<GateReport> report,
            Object... servletsAndPaths)
            throws Exception {
        server = new Server();
        ServerConnector connector = new ServerConnector(server);
        connector.setHost("127.0.0.1");
        server.addConnector(connector);
        ServletContextHandler context = new ServletContextHandler();
        context.addFilter(new FilterHolder(filter), filterMapping, EnumSet.of(DispatcherType.REQUEST));
        for (int i = 0; i < servletsAndPaths.length; i += 2) {
            context.addServlet(new ServletHolder((HttpServlet) servletsAndPaths[i]), (String) servletsAndPaths[i + 1]);
        }
        context.addEventListener(
                report == null
                        ? gate.listener()
                        : new ServletContextListener() {
                            @Override
                            public void contextInitialized(ServletContextEvent event) {
                                report.set(gate.check(event.getServletContext()));
                            }
                        });
        server.setHandler(context);
        server.start();
        return URI.create("http://127.0.0.1:" + connector.getLocalPort());
    }

    private static int post(URI base, String path) throws Exception {
        try (HttpClient client = HttpClient.newHttpClient()) {
            return client.send(
                            HttpRequest.newBuilder(base.resolve(path))
                                    .POST(HttpRequest.BodyPublishers.ofString("x"))
                                    .build(),
                            HttpResponse.BodyHandlers.discarding())
                    .statusCode();
        }
    }

    @Test
    void anUncoveredPostFailsTheStartAndIsNamed() {
        IdempotencyFilter filter = ordersFilter();
        IdempotencyGate gate = IdempotencyGate.builder().filter(filter).build();

        assertThatThrownBy(() -> start(
                        filter,
                        "/*",
                        gate,
                        null,
                        new OrdersServlet(),
                        "/orders",
                        new RefundsServlet(),
                        "/refunds",
                        new ReportsServlet(),
                        "/reports"))
                .isInstanceOf(UncoveredEndpointsException.class)
                .hasMessageContaining("UNCOVERED POST /refunds")
                .hasMessageContaining(RefundsServlet.class.getName())
                .hasMessageContaining("@NotIdempotent(reason")
                .hasMessageContaining("exempt(\"POST /refunds\", \"<reason>\")")
                .hasMessageContaining("warnOnly(true)")
                .satisfies(e -> {
                    GateReport r = ((UncoveredEndpointsException) e).report();
                    assertThat(r.uncovered()).extracting(Endpoint::route).containsExactly("POST /refunds");
                    assertThat(r.covered()).extracting(Endpoint::route).containsExactly("POST /orders");
                });
    }

    @Test
    void anAnnotatedExemptionStartsAndIsReported() throws Exception {
        IdempotencyFilter filter = ordersFilter();
        AtomicReference<GateReport> report = new AtomicReference<>();
        URI base = start(
                filter,
                "/*",
                IdempotencyGate.builder().filter(filter).build(),
                report,
                new OrdersServlet(),
                "/orders",
                new ExemptRefundsServlet(),
                "/refunds");

        assertThat(report.get().passed()).isTrue();
        assertThat(report.get().covered()).extracting(Endpoint::route).containsExactly("POST /orders");
        assertThat(report.get().exempted()).singleElement().satisfies(e -> {
            assertThat(e.route()).isEqualTo("POST /refunds");
            assertThat(e.exemption())
                    .isEqualTo("@NotIdempotent: refunds are deduplicated by the payment provider's refund id");
        });
        assertThat(report.get().describe()).contains("exempt    POST /refunds");
        // the running application: the covered endpoint demands a key, the exempt one does not
        assertThat(post(base, "/orders")).isEqualTo(400);
        assertThat(post(base, "/refunds")).isEqualTo(202);
    }

    @Test
    void aConfiguredExemptionStartsAndIsReported_andAnUnusedOneIsNamed() throws Exception {
        IdempotencyFilter filter = ordersFilter();
        AtomicReference<GateReport> report = new AtomicReference<>();
        IdempotencyGate gate = IdempotencyGate.builder()
                .filter(filter)
                .exempt("POST /refunds", "legacy endpoint, retired in Q3")
                .exempt("POST /refundz", "typo")
                .build();
        start(filter, "/*", gate, report, new OrdersServlet(), "/orders", new RefundsServlet(), "/refunds");

        assertThat(report.get().exempted())
                .extracting(Endpoint::route, Endpoint::exemption)
                .containsExactly(tuple("POST /refunds", "configured: legacy endpoint, retired in Q3"));
        assertThat(report.get().unusedExemptions()).containsExactly("POST /refundz");
    }

    @Test
    void warnOnlyStartsWithTheUncoveredEndpointReported() throws Exception {
        IdempotencyFilter filter = ordersFilter();
        AtomicReference<GateReport> report = new AtomicReference<>();
        URI base = start(
                filter,
                "/*",
                IdempotencyGate.builder().filter(filter).warnOnly(true).build(),
                report,
                new OrdersServlet(),
                "/orders",
                new RefundsServlet(),
                "/refunds");

        assertThat(report.get().passed()).isFalse();
        assertThat(report.get().uncovered()).extracting(Endpoint::route).containsExactly("POST /refunds");
        assertThat(post(base, "/refunds")).isEqualTo(202);
    }

    @Test
    void theFiltersContainerMappingCounts() {
        // the filter would cover /orders by its own paths, but the container runs it only under /api/*
        IdempotencyFilter filter = IdempotencyFilter.builder(store).build();
        IdempotencyGate gate = IdempotencyGate.builder().filter(filter).build();

        assertThatThrownBy(() -> start(
                        filter,
                        "/api/*",
                        gate,
                        null,
                        new OrdersServlet(),
                        "/orders",
                        new OrdersServlet(),
                        "/api/orders"))
                .isInstanceOf(UncoveredEndpointsException.class)
                .hasMessageContaining("UNCOVERED POST /orders  (servlet ")
                .hasMessageContaining("not reached, in the filter's paths but outside every mapping of the filter")
                .hasMessageContaining("map the filter in the container to the path as well")
                .satisfies(e -> {
                    GateReport r = ((UncoveredEndpointsException) e).report();
                    assertThat(r.uncovered()).extracting(Endpoint::route).containsExactly("POST /orders");
                    assertThat(r.unreached()).extracting(Endpoint::route).containsExactly("POST /orders");
                    assertThat(e.getMessage()).doesNotContain("add its path");
                });
    }

    @Test
    void serviceOverridesCountForEveryMethod_putAndDeleteWhenAskedFor() {
        IdempotencyFilter filter =
                IdempotencyFilter.builder(store).paths("/orders/*").build();
        IdempotencyGate gate = IdempotencyGate.builder()
                .filter(filter)
                .methods("POST", "PATCH", "PUT", "DELETE")
                .build();

        assertThatThrownBy(() -> start(
                        filter, "/*", gate, null, new CatchAllServlet(), "/rpc/*", new ItemsServlet(), "/orders/*"))
                .isInstanceOf(UncoveredEndpointsException.class)
                .satisfies(e -> {
                    GateReport r = ((UncoveredEndpointsException) e).report();
                    assertThat(r.uncovered())
                            .extracting(Endpoint::route)
                            .containsExactlyInAnyOrder(
                                    "POST /rpc/*", "PATCH /rpc/*", "PUT /rpc/*", "DELETE /rpc/*", "DELETE /orders/*");
                    assertThat(r.exempted()).extracting(Endpoint::route).containsExactly("PUT /orders/*");
                });
    }

    @Test
    void prefixAndDefaultMappingsAreCoveredOnlyByPatternsThatCoverEveryPath() {
        IdempotencyFilter filter =
                IdempotencyFilter.builder(store).paths("/orders/*", "/carts/42").build();
        IdempotencyGate gate =
                IdempotencyGate.builder().filter(filter).warnOnly(true).build();

        GateReport r = gate.check(List.of(
                new Endpoint("POST", "/orders/*", "a", null),
                new Endpoint("POST", "/orders/{id}/lines", "b", null),
                new Endpoint("POST", "/carts/*", "c", null),
                new Endpoint("POST", "/*", "default servlet", null),
                new Endpoint("GET", "/carts/*", "read-only", null)));

        assertThat(r.covered())
                .extracting(Endpoint::route)
                .containsExactly("POST /orders/*", "POST /orders/{id}/lines");
        assertThat(r.uncovered()).extracting(Endpoint::route).containsExactly("POST /*", "POST /carts/*");
    }

    @Test
    void exemptionsNeedARouteAndAReason() {
        assertThatThrownBy(() -> IdempotencyGate.builder().exempt("POST /refunds", " "))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("needs a reason");
        assertThatThrownBy(() -> IdempotencyGate.builder().exempt("/refunds", "why"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("'METHOD path'");
        // a gate without a filter has nothing to judge coverage by, unless it is given the filters' mappings
        assertThatThrownBy(() -> IdempotencyGate.builder().build().check(List.of()))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("filter(filter)");
        assertThatThrownBy(() -> IdempotencyGate.builder().build().listener())
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("filter(filter)");
        assertThatThrownBy(() -> IdempotencyGate.builder().exempt("POST /refunds", null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("reason");
        assertThatThrownBy(() -> IdempotencyGate.builder().methods("POST", null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("methods");
        assertThatThrownBy(() -> IdempotencyGate.builder().methods("GET"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("'GET'");
    }
}
