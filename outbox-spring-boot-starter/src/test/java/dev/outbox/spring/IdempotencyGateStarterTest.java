package dev.outbox.spring;

import static org.assertj.core.api.Assertions.assertThat;

import dev.outbox.http.server.IdempotencyFilter;
import dev.outbox.http.server.IdempotencyStore;
import dev.outbox.http.server.NotIdempotent;
import dev.outbox.http.server.gate.Endpoint;
import dev.outbox.http.server.gate.GateReport;
import dev.outbox.http.server.gate.UncoveredEndpointsException;
import dev.outbox.spring.internal.SpringMvcGate;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import javax.sql.DataSource;
import org.junit.jupiter.api.Test;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.env.PropertiesPropertySourceLoader;
import org.springframework.boot.env.PropertySourceLoader;
import org.springframework.boot.env.YamlPropertySourceLoader;
import org.springframework.boot.test.context.runner.WebApplicationContextRunner;
import org.springframework.boot.web.servlet.FilterRegistrationBean;
import org.springframework.boot.webmvc.autoconfigure.DispatcherServletAutoConfiguration;
import org.springframework.boot.webmvc.autoconfigure.WebMvcAutoConfiguration;
import org.springframework.boot.webmvc.autoconfigure.error.ErrorMvcAutoConfiguration;
import org.springframework.context.SmartLifecycle;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.env.PropertySource;
import org.springframework.core.io.ByteArrayResource;
import org.springframework.http.ResponseEntity;
import org.springframework.jdbc.datasource.DataSourceTransactionManager;
import org.springframework.jdbc.datasource.DriverManagerDataSource;
import org.springframework.security.web.DefaultSecurityFilterChain;
import org.springframework.security.web.SecurityFilterChain;
import org.springframework.security.web.util.matcher.AnyRequestMatcher;
import org.springframework.transaction.PlatformTransactionManager;
import org.springframework.web.bind.annotation.DeleteMapping;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PatchMapping;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.PutMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RestController;
import org.springframework.web.servlet.function.HandlerFunction;
import org.springframework.web.servlet.function.RouterFunction;
import org.springframework.web.servlet.function.RouterFunctions;
import org.springframework.web.servlet.function.ServerResponse;
import org.springframework.web.servlet.mvc.method.annotation.StreamingResponseBody;

/**
 * The start-up gate in a Spring Boot application: an uncovered POST fails the start and is named;
 * an exempted one starts and is reported; Boot's own error controller (every method on {@code
 * /error}) is not the application's endpoint and is not flagged. No database is needed: the gate
 * only reads mappings.
 */
class IdempotencyGateStarterTest {
    private static final DataSource NEVER_CONNECTED = new DriverManagerDataSource("jdbc:postgresql://127.0.0.1:1/none");

    private final WebApplicationContextRunner web = mvc().withUserConfiguration(Controllers.class);

    /** @return a web context of the starter and Spring MVC, with no database behind it, protecting /orders */
    private static WebApplicationContextRunner mvc() {
        return withoutPaths().withPropertyValues("outbox.idempotency.paths=/orders");
    }

    /** @return a web context of the starter and Spring MVC, with no database behind it, and no paths to protect */
    private static WebApplicationContextRunner withoutPaths() {
        return new WebApplicationContextRunner()
                .withConfiguration(AutoConfigurations.of(
                        DispatcherServletAutoConfiguration.class,
                        WebMvcAutoConfiguration.class,
                        ErrorMvcAutoConfiguration.class,
                        OutboxAutoConfiguration.class))
                .withBean(DataSource.class, () -> NEVER_CONNECTED)
                .withBean(PlatformTransactionManager.class, () -> new DataSourceTransactionManager(NEVER_CONNECTED))
                .withPropertyValues("outbox.migrations.enabled=false");
    }

    /**
     * A service that adds the starter for the outbox and sets no outbox.idempotency.paths runs no filter:
     * its POST endpoints fail the start, named, with the three ways out (set the paths, exempt, turn the
     * gate off). Before, the gate ran only when the paths were set, and such a service started silently.
     */
    @Test
    void withoutPathsEveryMutatingEndpointFailsTheStartWithTheWaysOut() {
        WebApplicationContextRunner payments = withoutPaths().withUserConfiguration(Controllers.class);
        payments.run(context -> {
            assertThat(context).hasFailed();
            assertThat(uncovered(context.getStartupFailure()).getMessage())
                    .contains("0 mutating endpoint(s) covered by IdempotencyFilter, 1 exempted, 2 uncovered")
                    .contains("UNCOVERED POST /orders")
                    .contains("UNCOVERED POST /refunds")
                    .contains("no Idempotency-Key filter runs in this application, as outbox.idempotency.paths is"
                            + " not set: set it to the endpoint's path")
                    .contains("which turns the starter's filter on")
                    .contains("@NotIdempotent(reason = \"...\")")
                    .contains("outbox.idempotency.gate.exemptions[POST\\ /orders]=<reason>")
                    .contains("outbox.idempotency.gate.warn-only=true")
                    .contains("outbox.idempotency.gate.enabled=false turns the gate off");
        });
        payments.withPropertyValues("outbox.idempotency.gate.enabled=false")
                .run(context -> assertThat(context).hasNotFailed().doesNotHaveBean(SpringMvcGate.class));
        payments.withPropertyValues("outbox.idempotency.gate.warn-only=true")
                .run(context -> assertThat(context).hasNotFailed());
        payments.withPropertyValues(
                        "outbox.idempotency.gate.exemptions[* /orders]=orders carry the client's order number",
                        "outbox.idempotency.gate.exemptions[POST /refunds]=deduplicated by the refund id")
                .run(context -> assertThat(context).hasNotFailed());
        // setting the paths turns the filter on, and the endpoints under it are covered
        payments.withPropertyValues("outbox.idempotency.paths=/orders,/refunds").run(context -> {
            assertThat(context).hasNotFailed();
            assertThat(context.getBean(SpringMvcGate.class).lastReport().covered())
                    .extracting(Endpoint::route)
                    .containsExactlyInAnyOrder("POST /orders", "POST /refunds");
        });
        // an application with nothing to protect starts
        withoutPaths()
                .withUserConfiguration(ReadOnly.class)
                .run(context -> assertThat(context).hasNotFailed());
    }

    /**
     * outbox.idempotency.gate.methods adds methods to check: POST and PATCH stay checked. Before, it
     * replaced them, and methods=PUT,DELETE let an uncovered POST start.
     */
    @Test
    void gateMethodsAddToPostAndPatch() {
        web.withUserConfiguration(Items.class)
                .withPropertyValues("outbox.idempotency.gate.methods=PUT,DELETE")
                .run(context -> {
                    assertThat(context).hasFailed();
                    assertThat(uncovered(context.getStartupFailure()).getMessage())
                            .contains("UNCOVERED POST /refunds")
                            .contains("UNCOVERED PUT /items/{id}")
                            .contains("UNCOVERED DELETE /items/{id}")
                            .doesNotContain("UNCOVERED POST /orders");
                });
    }

    /**
     * An application that registers an Idempotency-Key filter of its own, for other paths, on every path:
     * the starter's registration is off, and the starter's filter, whose paths hold /orders, runs nowhere.
     * POST /orders is uncovered, and the report says the filter's paths hold it but no registration
     * reaches it. Before, the reach of the application's filter was lent to the starter's, and POST
     * /orders was reported covered while no running filter covered it.
     */
    @Test
    void anEndpointIsJudgedByTheFiltersThatReachIt() {
        web.withUserConfiguration(AdminFilterOnEveryPath.class).run(context -> {
            assertThat(context).hasFailed();
            assertThat(uncovered(context.getStartupFailure()).getMessage())
                    .contains("UNCOVERED POST /orders  (" + Controllers.class.getName() + "#order): not reached,"
                            + " in the filter's paths but outside every mapping of the filter")
                    .contains("register the filter whose paths hold the endpoint on its path");
        });
    }

    /**
     * Under the starter the report names its properties, not the builders' methods: the paths and methods
     * to cover an endpoint, the exemption key written for a .properties file and YAML, warn-only and
     * the switch. An endpoint in the paths that no registration reaches is told so, not to add its path.
     */
    @Test
    void theReportNamesTheStartersProperties() {
        web.run(context -> assertThat(uncovered(context.getStartupFailure()).getMessage())
                .contains("Cover each uncovered endpoint: add its path to outbox.idempotency.paths (an exact path, or"
                        + " a prefix such as /orders/*) and its method to outbox.idempotency.methods")
                .contains("outbox.idempotency.gate.methods only adds methods the gate checks")
                .contains("outbox.idempotency.gate.exemptions[POST\\ /refunds]=<reason> in application.properties"
                        + " (in YAML the key quoted, \"[POST /refunds]\": <reason>)")
                .contains("outbox.idempotency.gate.warn-only=true logs this instead of failing the start")
                .doesNotContain("IdempotencyFilter.builder")
                .doesNotContain("IdempotencyGate.builder")
                .doesNotContain("warnOnly(true)"));
        mvc().withUserConfiguration(OrderControllers.class, ExactOrdersRegistration.class)
                .withPropertyValues("outbox.idempotency.paths=/orders/*")
                .run(context -> assertThat(
                                uncovered(context.getStartupFailure()).getMessage())
                        .contains("UNCOVERED POST /orders/{id}/refund")
                        .contains("not reached, in the filter's paths but outside every mapping of the filter")
                        .contains("the starter registers its filter on outbox.idempotency.paths, unless the"
                                + " application registers an IdempotencyFilter itself")
                        .doesNotContain("add its path"));
    }

    /**
     * Functional routes (RouterFunction beans) are checked like annotated endpoints; one whose path the
     * gate cannot read from its predicate is uncovered and named, whatever the filter's paths. Before,
     * only the annotated controllers were read, and these routes started uncovered.
     */
    @Test
    void functionalRoutesAreChecked() {
        WebApplicationContextRunner routes = mvc().withUserConfiguration(Routes.class);
        routes.run(context -> {
            assertThat(context).hasFailed();
            assertThat(uncovered(context.getStartupFailure()).getMessage())
                    .contains("UNCOVERED POST /payments  (functional route (POST && /payments)")
                    .contains("UNCOVERED PATCH /**  (functional route")
                    .contains("unreadable, the gate cannot read which path its predicate takes")
                    .doesNotContain("UNCOVERED POST /orders");
        });
        routes.withPropertyValues("outbox.idempotency.paths=/*").run(context -> {
            assertThat(context).hasFailed();
            assertThat(uncovered(context.getStartupFailure()).getMessage())
                    .contains("UNCOVERED PATCH /**")
                    .doesNotContain("UNCOVERED POST /payments");
        });
        routes.withPropertyValues(
                        "outbox.idempotency.paths=/orders,/payments",
                        "outbox.idempotency.gate.exemptions[PATCH /**]=the legacy forms proxy forwards the key")
                .run(context -> {
                    assertThat(context).hasNotFailed();
                    assertThat(context.getBean(SpringMvcGate.class).lastReport().covered())
                            .extracting(Endpoint::route)
                            .contains("POST /orders", "POST /payments");
                });
    }

    @Configuration(proxyBeanMethods = false)
    static class Routes {
        @Bean
        RouterFunction<ServerResponse> paymentRoutes() {
            HandlerFunction<ServerResponse> ok = request -> ServerResponse.ok().build();
            return RouterFunctions.route()
                    .POST("/orders", ok)
                    .POST("/payments", ok)
                    .GET("/payments/{id}", ok)
                    .PATCH(request -> request.path().startsWith("/forms"), ok)
                    .build();
        }
    }

    /** The application's own filter, for /admin/*, registered on every path: the starter's registration is off. */
    @Configuration(proxyBeanMethods = false)
    static class AdminFilterOnEveryPath {
        @Bean
        FilterRegistrationBean<IdempotencyFilter> adminIdempotencyFilter(IdempotencyStore store) {
            FilterRegistrationBean<IdempotencyFilter> r = new FilterRegistrationBean<>(
                    IdempotencyFilter.builder(store).paths("/admin/*").build());
            r.addUrlPatterns("/*");
            return r;
        }
    }

    @RestController
    static class ReadOnly {
        @GetMapping("/orders")
        String orders() {
            return "[]";
        }
    }

    @RestController
    static class Items {
        @PutMapping("/items/{id}")
        String put() {
            return "ok";
        }

        @DeleteMapping("/items/{id}")
        String delete() {
            return "ok";
        }
    }

    @Test
    void anUncoveredPostFailsTheStartAndIsNamed() {
        web.run(context -> {
            assertThat(context).hasFailed();
            assertThat(uncovered(context.getStartupFailure()).getMessage())
                    .contains("POST /refunds")
                    .doesNotContain("POST /orders")
                    .doesNotContain("/error");
        });
    }

    /**
     * The gate runs before the context's lifecycle starts: Spring Boot's web server and the Kafka listener
     * containers are lifecycle beans like this one, so a refused start has listened on no port and consumed
     * nothing. With the check on {@code ContextRefreshedEvent}, they had started first.
     */
    @Test
    void anUncoveredPostFailsTheStartBeforeTheLifecycleBeansStart() {
        Lifecycle refused = new Lifecycle();
        web.withBean("startsLikeTheWebServer", Lifecycle.class, () -> refused)
                .run(context -> assertThat(context).hasFailed());
        assertThat(refused.started)
                .as("started before the gate refused the start")
                .isFalse();

        Lifecycle passed = new Lifecycle();
        web.withPropertyValues("outbox.idempotency.gate.exemptions[POST /refunds]=deduplicated by the refund id")
                .withBean("startsLikeTheWebServer", Lifecycle.class, () -> passed)
                .run(context -> assertThat(context).hasNotFailed());
        assertThat(passed.started).as("started once the gate passed").isTrue();
    }

    /**
     * The application registers the filter itself, mapped to fewer paths than outbox.idempotency.paths (or turned
     * off): the endpoints its mapping does not reach are uncovered, since the filter never sees their requests.
     * Before, the gate judged by the configured paths alone, which the starter had stopped applying, and such an
     * endpoint started unprotected, reported covered.
     */
    @Test
    void anEndpointTheApplicationsOwnRegistrationDoesNotReachIsUncovered() {
        WebApplicationContextRunner nested = mvc().withUserConfiguration(OrderControllers.class)
                .withPropertyValues("outbox.idempotency.paths=/orders/*");
        nested.run(context -> assertThat(context).hasNotFailed());
        nested.withUserConfiguration(ExactOrdersRegistration.class).run(context -> {
            assertThat(context).hasFailed();
            assertThat(uncovered(context.getStartupFailure()).getMessage())
                    .contains("POST /orders/{id}/refund")
                    .doesNotContain("POST /orders ");
        });
        nested.withUserConfiguration(DisabledRegistration.class).run(context -> {
            assertThat(context).hasFailed();
            assertThat(uncovered(context.getStartupFailure()).getMessage())
                    .contains("POST /orders/{id}/refund")
                    .contains("POST /orders");
        });
        // turned off because the filter runs in a Spring Security filter chain instead: it sees that chain's requests
        nested.withUserConfiguration(DisabledRegistration.class, InASecurityChain.class)
                .run(context -> assertThat(context).hasNotFailed());
    }

    private static Throwable uncovered(Throwable failure) {
        Throwable t = failure;
        while (t != null && !(t instanceof UncoveredEndpointsException)) {
            t = t.getCause();
        }
        assertThat(t).as("the start failed on uncovered endpoints: %s", failure).isNotNull();
        return t;
    }

    @RestController
    static class OrderControllers {
        @PostMapping("/orders")
        String order() {
            return "ok";
        }

        @PostMapping("/orders/{id}/refund")
        String refund() {
            return "ok";
        }
    }

    /** The application's own registration of the filter, on /orders alone. */
    @Configuration(proxyBeanMethods = false)
    static class ExactOrdersRegistration {
        @Bean
        FilterRegistrationBean<IdempotencyFilter> ownIdempotencyFilter(IdempotencyFilter filter) {
            FilterRegistrationBean<IdempotencyFilter> r = new FilterRegistrationBean<>(filter);
            r.addUrlPatterns("/orders");
            return r;
        }
    }

    /** The filter in a Spring Security filter chain, for every request. */
    @Configuration(proxyBeanMethods = false)
    static class InASecurityChain {
        @Bean
        SecurityFilterChain idempotencyChain(IdempotencyFilter filter) {
            return new DefaultSecurityFilterChain(AnyRequestMatcher.INSTANCE, filter);
        }
    }

    /** The application's own registration of the filter, turned off. */
    @Configuration(proxyBeanMethods = false)
    static class DisabledRegistration {
        @Bean
        FilterRegistrationBean<IdempotencyFilter> ownIdempotencyFilter(IdempotencyFilter filter) {
            FilterRegistrationBean<IdempotencyFilter> r = new FilterRegistrationBean<>(filter);
            r.setEnabled(false);
            return r;
        }
    }

    /** Records whether the context started it. */
    static final class Lifecycle implements SmartLifecycle {
        volatile boolean started;
        private volatile boolean running;

        @Override
        public void start() {
            started = true;
            running = true;
        }

        @Override
        public void stop() {
            running = false;
        }

        @Override
        public boolean isRunning() {
            return running;
        }
    }

    @Test
    void anExemptionWithAReasonStartsAndIsReported() {
        web.withPropertyValues("outbox.idempotency.gate.exemptions[POST /refunds]=deduplicated by the refund id")
                .run(context -> {
                    assertThat(context).hasNotFailed();
                    assertThat(context).hasSingleBean(SpringMvcGate.class);
                });
    }

    @Test
    void warnOnlyStartsWithTheEndpointUncovered() {
        web.withPropertyValues("outbox.idempotency.gate.warn-only=true")
                .run(context -> assertThat(context).hasNotFailed());
    }

    @Test
    void theGateCanBeTurnedOff() {
        web.withPropertyValues("outbox.idempotency.gate.enabled=false").run(context -> {
            assertThat(context).hasNotFailed();
            assertThat(context).doesNotHaveBean(SpringMvcGate.class);
        });
    }

    @Test
    void aRefusedGateSettingNamesItsProperty() {
        web.withPropertyValues("outbox.idempotency.gate.methods=POST,GET").run(context -> {
            assertThat(context).hasFailed();
            assertThat(rootCause(context.getStartupFailure()).getMessage())
                    .startsWith("outbox.idempotency.gate.methods=POST,GET: outbox.idempotency.gate.methods[1] is"
                            + " \"GET\": method 'GET' cannot be checked");
        });
        web.withPropertyValues("outbox.idempotency.gate.exemptions[POST /refunds]= ")
                .run(context -> {
                    assertThat(context).hasFailed();
                    assertThat(rootCause(context.getStartupFailure()).getMessage())
                            .startsWith("outbox.idempotency.gate.exemptions[POST /refunds]=")
                            .contains("needs a reason");
                });
    }

    /** The README's example, as a .properties file holds it: the space in the key escaped. */
    @Test
    void anExemptionInAPropertiesFileWithTheSpaceEscapedIsApplied() {
        webhooks(properties("outbox.idempotency.gate.exemptions[POST\\ /webhooks/stripe]=deduplicated by the Stripe"
                        + " event id\n"))
                .run(context -> {
                    assertThat(context).hasNotFailed();
                    assertStripeWebhookExempted(context.getBean(SpringMvcGate.class));
                });
    }

    /** The README's example in YAML: the bracketed key quoted. */
    @Test
    void anExemptionInYamlWithTheKeyQuotedIsApplied() {
        webhooks(yaml("""
                        outbox:
                          idempotency:
                            gate:
                              exemptions:
                                "[POST /webhooks/stripe]": deduplicated by the Stripe event id
                        """)).run(context -> {
            assertThat(context).hasNotFailed();
            assertStripeWebhookExempted(context.getBean(SpringMvcGate.class));
        });
    }

    /**
     * Unescaped, a .properties file ends the key at the space: the exemption would be of the route
     * "POST" with the reason "/webhooks/stripe]=...". The start fails, naming the property and how to
     * write it.
     */
    @Test
    void anExemptionInAPropertiesFileWithTheSpaceUnescapedFailsTheStartWithTheFix() {
        webhooks(properties("outbox.idempotency.gate.exemptions[POST /webhooks/stripe]=deduplicated by the Stripe"
                        + " event id\n"))
                .run(context -> {
                    assertThat(context).hasFailed();
                    assertThat(rootCause(context.getStartupFailure()).getMessage())
                            .startsWith("outbox.idempotency.gate.exemptions[POST]=/webhooks/stripe]=deduplicated by the"
                                    + " Stripe event id: exemption route 'POST' must be 'METHOD path'")
                            .contains("outbox.idempotency.gate.exemptions[POST\\ /webhooks/stripe]=<reason>")
                            .contains("\"[POST /webhooks/stripe]\": <reason>");
                });
    }

    private static void assertStripeWebhookExempted(SpringMvcGate gate) {
        GateReport report = gate.lastReport();
        assertThat(report).as("the gate ran").isNotNull();
        assertThat(report.uncovered()).isEmpty();
        assertThat(report.unusedExemptions()).isEmpty();
        assertThat(report.exempted()).anySatisfy(e -> {
            assertThat(e.route()).isEqualTo("POST /webhooks/stripe");
            assertThat(e.exemption()).isEqualTo("configured: deduplicated by the Stripe event id");
        });
    }

    /** @return a context of {@link Webhooks} with {@code source} as the application's configuration file */
    private static WebApplicationContextRunner webhooks(PropertySource<?> source) {
        return mvc().withUserConfiguration(Webhooks.class)
                .withInitializer(
                        context -> context.getEnvironment().getPropertySources().addFirst(source));
    }

    /** @return {@code text} loaded as Spring Boot loads an application.properties file */
    private static PropertySource<?> properties(String text) {
        return load(new PropertiesPropertySourceLoader(), "application.properties", text);
    }

    /** @return {@code text} loaded as Spring Boot loads an application.yaml file */
    private static PropertySource<?> yaml(String text) {
        return load(new YamlPropertySourceLoader(), "application.yaml", text);
    }

    private static PropertySource<?> load(PropertySourceLoader loader, String name, String text) {
        try {
            List<PropertySource<?>> sources =
                    loader.load(name, new ByteArrayResource(text.getBytes(StandardCharsets.ISO_8859_1), name));
            assertThat(sources).hasSize(1);
            return sources.get(0);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static Throwable rootCause(Throwable failure) {
        Throwable root = failure;
        while (root.getCause() != null) {
            root = root.getCause();
        }
        return root;
    }

    /**
     * G5: a covered endpoint whose handler answers asynchronously fails the start, named, whatever the
     * async type (a {@code Callable}, a {@code CompletableFuture}, a {@code ResponseEntity} of a
     * streaming body): its work would run outside the key's transaction and again on every retry. A
     * synchronous handler on a covered path passes; warn-only logs and starts.
     */
    @Test
    void aCoveredEndpointThatAnswersAsynchronouslyFailsTheStart() {
        WebApplicationContextRunner async = mvc().withUserConfiguration(AsyncControllers.class)
                .withPropertyValues("outbox.idempotency.paths=/orders,/payments,/exports");
        async.run(context -> {
            assertThat(context).hasFailed();
            assertThat(rootCause(context.getStartupFailure()).getMessage())
                    .contains("answer asynchronously")
                    .contains("POST /payments")
                    .contains("POST /exports")
                    .contains("PATCH /orders")
                    .doesNotContain("POST /orders");
        });
        async.withPropertyValues("outbox.idempotency.gate.warn-only=true")
                .run(context -> assertThat(context).hasNotFailed());
    }

    /**
     * The async check judges each handler method by its own routes: a synchronous POST on a covered
     * path beside a GET of the same method name answering with a {@code Callable} (which the filter,
     * protecting POST and PATCH, lets answer asynchronously) starts. Judged by the name alone, the GET's
     * {@code Callable} was charged to the covered POST and the start failed. Swapped, the covered POST
     * that answers with a {@code Callable} still fails the start, named with its parameters.
     */
    @Test
    void aStreamingGetBesideACoveredPostOfTheSameNameStarts() {
        mvc().withUserConfiguration(StreamingGetBesidePost.class).run(context -> {
            assertThat(context).hasNotFailed();
            assertThat(context.getBean(SpringMvcGate.class).lastReport().covered())
                    .extracting(Endpoint::route)
                    .containsExactly("POST /orders");
        });
        mvc().withUserConfiguration(AsyncPostBesideGet.class).run(context -> {
            assertThat(context).hasFailed();
            assertThat(rootCause(context.getStartupFailure()).getMessage())
                    .contains("answer asynchronously")
                    .contains("POST /orders (" + AsyncPostBesideGet.class.getName() + "#orders(String))");
        });
    }

    @RestController
    static class StreamingGetBesidePost {
        @GetMapping("/orders")
        Callable<String> orders() {
            return () -> "[]";
        }

        @PostMapping("/orders")
        String orders(@RequestBody String order) {
            return "ok";
        }
    }

    @RestController
    static class AsyncPostBesideGet {
        @GetMapping("/orders")
        String orders() {
            return "[]";
        }

        @PostMapping("/orders")
        Callable<String> orders(@RequestBody String order) {
            return () -> "ok";
        }
    }

    /**
     * Under a DispatcherServlet path with a trailing slash ({@code spring.mvc.servlet.path=/api/}, which
     * Spring Boot accepts and maps as {@code /api}) the endpoints are listed under {@code /api}, and so is
     * Boot's error controller, {@code /api/error}, which is left out as under {@code /api}: an application
     * whose POST is covered starts. The error page was taken as {@code /api//error}, the error
     * controller's every method was checked, and each such start failed on its uncovered POST and PATCH.
     */
    @Test
    void underAServletPathWithATrailingSlashTheErrorControllerIsLeftOut() {
        for (String servletPath : List.of("/api/", "/api")) {
            withoutPaths()
                    .withUserConfiguration(Orders.class)
                    .withPropertyValues(
                            "spring.mvc.servlet.path=" + servletPath, "outbox.idempotency.paths=/api/orders")
                    .run(context -> {
                        assertThat(context)
                                .as("spring.mvc.servlet.path=%s", servletPath)
                                .hasNotFailed();
                        GateReport report = context.getBean(SpringMvcGate.class).lastReport();
                        assertThat(report.covered()).extracting(Endpoint::route).containsExactly("POST /api/orders");
                        assertThat(report.uncovered()).isEmpty();
                    });
        }
    }

    @RestController
    static class Orders {
        @PostMapping("/orders")
        String order() {
            return "ok";
        }
    }

    @RestController
    static class AsyncControllers {
        @PostMapping("/orders")
        String order() {
            return "ok";
        }

        @PatchMapping("/orders")
        CompletableFuture<String> amend() {
            return CompletableFuture.completedFuture("ok");
        }

        @PostMapping("/payments")
        Callable<String> pay() {
            return () -> "ok";
        }

        @PostMapping("/exports")
        ResponseEntity<StreamingResponseBody> export() {
            return ResponseEntity.ok(out -> out.write(1));
        }
    }

    @RestController
    static class Webhooks {
        @PostMapping("/orders")
        String order() {
            return "ok";
        }

        @PostMapping("/webhooks/stripe")
        String stripe() {
            return "ok";
        }
    }

    @RestController
    static class Controllers {
        @PostMapping("/orders")
        String order() {
            return "ok";
        }

        @PostMapping("/refunds")
        String refund() {
            return "ok";
        }

        @PatchMapping("/profile")
        @NotIdempotent(reason = "last write wins on the whole profile")
        String profile() {
            return "ok";
        }
    }
}
