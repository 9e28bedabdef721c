package dev.outbox.spring;

import static org.assertj.core.api.Assertions.assertThat;

import dev.outbox.http.server.NotIdempotent;
import dev.outbox.http.server.gate.UncoveredEndpointsException;
import dev.outbox.spring.internal.SpringMvcGate;
import javax.sql.DataSource;
import org.junit.jupiter.api.Test;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.test.context.runner.WebApplicationContextRunner;
import org.springframework.boot.webmvc.autoconfigure.DispatcherServletAutoConfiguration;
import org.springframework.boot.webmvc.autoconfigure.WebMvcAutoConfiguration;
import org.springframework.boot.webmvc.autoconfigure.error.ErrorMvcAutoConfiguration;
import org.springframework.jdbc.datasource.DataSourceTransactionManager;
import org.springframework.jdbc.datasource.DriverManagerDataSource;
import org.springframework.transaction.PlatformTransactionManager;
import org.springframework.web.bind.annotation.PatchMapping;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RestController;

/**
 * The start-up gate in a Spring Boot application: an uncovered POST fails the start and is named;
 * an exempted one starts and is reported; Boot's own error controller (every method on {@code
 * /error}) is not the application's endpoint and is not flagged. No database is needed: the gate
 * only reads mappings.
 */
class IdempotencyGateStarterTest {
    private static final DataSource NEVER_CONNECTED = new DriverManagerDataSource("jdbc:postgresql://127.0.0.1:1/none");

    private final WebApplicationContextRunner web = new WebApplicationContextRunner()
            .withConfiguration(AutoConfigurations.of(
                    DispatcherServletAutoConfiguration.class,
                    WebMvcAutoConfiguration.class,
                    ErrorMvcAutoConfiguration.class,
                    OutboxAutoConfiguration.class))
            .withBean(DataSource.class, () -> NEVER_CONNECTED)
            .withBean(PlatformTransactionManager.class, () -> new DataSourceTransactionManager(NEVER_CONNECTED))
            .withUserConfiguration(Controllers.class)
            .withPropertyValues("outbox.migrations.enabled=false", "outbox.idempotency.paths=/orders");

    @Test
    void anUncoveredPostFailsTheStartAndIsNamed() {
        web.run(context -> {
            assertThat(context).hasFailed();
            Throwable failure = context.getStartupFailure();
            while (failure != null && !(failure instanceof UncoveredEndpointsException)) {
                failure = failure.getCause();
            }
            assertThat(failure).isInstanceOf(UncoveredEndpointsException.class);
            assertThat(failure.getMessage())
                    .contains("POST /refunds")
                    .doesNotContain("POST /orders")
                    .doesNotContain("/error");
        });
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
