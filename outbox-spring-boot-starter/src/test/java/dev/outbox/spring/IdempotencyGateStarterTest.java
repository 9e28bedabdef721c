package dev.outbox.spring;

import static org.assertj.core.api.Assertions.assertThat;

import dev.outbox.http.server.IdempotencyFilter;
import dev.outbox.http.server.NotIdempotent;
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
import org.springframework.web.bind.annotation.PatchMapping;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RestController;
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
        return new WebApplicationContextRunner()
                .withConfiguration(AutoConfigurations.of(
                        DispatcherServletAutoConfiguration.class,
                        WebMvcAutoConfiguration.class,
                        ErrorMvcAutoConfiguration.class,
                        OutboxAutoConfiguration.class))
                .withBean(DataSource.class, () -> NEVER_CONNECTED)
                .withBean(PlatformTransactionManager.class, () -> new DataSourceTransactionManager(NEVER_CONNECTED))
                .withPropertyValues("outbox.migrations.enabled=false", "outbox.idempotency.paths=/orders");
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
