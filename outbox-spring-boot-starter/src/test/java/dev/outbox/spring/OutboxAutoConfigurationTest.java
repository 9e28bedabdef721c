package dev.outbox.spring;

import static org.assertj.core.api.Assertions.assertThat;

import dev.outbox.core.Outbox;
import dev.outbox.http.server.IdempotencyFilter;
import dev.outbox.relay.Relay;
import dev.outbox.spring.internal.OutboxMigrationsInitializer;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import javax.sql.DataSource;
import org.junit.jupiter.api.Test;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.boot.test.context.runner.WebApplicationContextRunner;
import org.springframework.boot.web.servlet.FilterRegistrationBean;
import org.springframework.jdbc.datasource.DataSourceTransactionManager;
import org.springframework.jdbc.datasource.DriverManagerDataSource;
import org.springframework.transaction.PlatformTransactionManager;

/**
 * The auto-configuration's conditions and settings, without a database: every context here has
 * the migrations turned off and a data source that is never connected to.
 */
class OutboxAutoConfigurationTest {
    private static final DataSource NEVER_CONNECTED = new DriverManagerDataSource("jdbc:postgresql://127.0.0.1:1/none");

    private final ApplicationContextRunner runner = new ApplicationContextRunner()
            .withConfiguration(AutoConfigurations.of(OutboxAutoConfiguration.class))
            .withBean(DataSource.class, () -> NEVER_CONNECTED)
            .withPropertyValues("outbox.migrations.enabled=false");

    private final WebApplicationContextRunner web = new WebApplicationContextRunner()
            .withConfiguration(AutoConfigurations.of(OutboxAutoConfiguration.class))
            .withBean(DataSource.class, () -> NEVER_CONNECTED)
            .withBean(PlatformTransactionManager.class, () -> new DataSourceTransactionManager(NEVER_CONNECTED))
            .withPropertyValues("outbox.migrations.enabled=false");

    @Test
    void givesTheOutboxAndTheDedupClaimAndSkipsTheMigrationsWhenTold() {
        runner.withPropertyValues("outbox.schema=shop_outbox", "outbox.shards=16")
                .run(context -> {
                    assertThat(context).hasNotFailed();
                    assertThat(context)
                            .hasSingleBean(OutboxTemplate.class)
                            .hasSingleBean(ProcessedMessagesTemplate.class);
                    assertThat(context).doesNotHaveBean(OutboxMigrationsInitializer.class);
                    assertThat(context).doesNotHaveBean(IdempotencyFilter.class);
                    Outbox outbox = context.getBean(Outbox.class);
                    assertThat(outbox.schema()).isEqualTo("shop_outbox");
                    assertThat(outbox.shardCount()).isEqualTo(16);
                });
    }

    @Test
    void backsOffWithoutADataSource() {
        new ApplicationContextRunner()
                .withConfiguration(AutoConfigurations.of(OutboxAutoConfiguration.class))
                .run(context -> assertThat(context).hasNotFailed().doesNotHaveBean(OutboxTemplate.class));
    }

    @Test
    void registersTheFilterForTheConfiguredPathsOnly() {
        web.withPropertyValues("outbox.idempotency.paths=/orders,/payments/*").run(context -> {
            assertThat(context).hasNotFailed().hasSingleBean(IdempotencyFilter.class);
            FilterRegistrationBean<?> registration =
                    context.getBean(OutboxAutoConfiguration.FILTER_REGISTRATION_BEAN, FilterRegistrationBean.class);
            assertThat(registration.getUrlPatterns()).containsExactly("/orders", "/payments/*");
        });
        web.run(context -> assertThat(context).hasNotFailed().doesNotHaveBean(IdempotencyFilter.class));
    }

    @Test
    void anEmbeddedRelayWithoutKafkaNamesTheSettings() {
        runner.withPropertyValues("outbox.relay.enabled=true").run(context -> {
            assertThat(context).hasFailed();
            assertThat(context.getStartupFailure())
                    .rootCause()
                    .hasMessageContaining("outbox.relay.bootstrap-servers")
                    .hasMessageContaining("spring.kafka.bootstrap-servers");
        });
    }

    @Test
    void theEmbeddedRelaysDefaultsAreTheRelays() {
        OutboxProperties.Relay relay = new OutboxProperties().getRelay();
        assertThat(relay.getBatchSize()).isEqualTo(Relay.Builder.DEFAULT_BATCH_SIZE);
        assertThat(relay.getBatchBytes().toBytes()).isEqualTo(Relay.Builder.DEFAULT_BATCH_BYTES);
        assertThat(relay.getLeaseDuration()).isEqualTo(Relay.Builder.DEFAULT_LEASE_DURATION);
        assertThat(relay.getIdlePollInterval()).isEqualTo(Relay.Builder.DEFAULT_IDLE_POLL_INTERVAL);
        assertThat(relay.getProbeInterval()).isEqualTo(Relay.Builder.DEFAULT_PROBE_INTERVAL);
        assertThat(relay.getProbeIntervalUnderLoad()).isEqualTo(Relay.Builder.DEFAULT_PROBE_INTERVAL_UNDER_LOAD);
        assertThat(relay.getWorkerThreads()).isEqualTo(Relay.Builder.DEFAULT_WORKER_THREADS);
        assertThat(relay.getVacuumAfterRows()).isEqualTo(Relay.Builder.DEFAULT_VACUUM_AFTER_ROWS);
    }

    @Test
    void theEmbeddedRelayTakesItsProbeAndBatchSettings() {
        // the builder refuses what is out of range, so a refusal shows the setting reached it
        runner.withPropertyValues(
                        "outbox.relay.enabled=true",
                        "outbox.relay.bootstrap-servers=127.0.0.1:1",
                        "outbox.relay.probe-interval-under-load=2s")
                .run(context -> {
                    assertThat(context).hasFailed();
                    assertThat(context.getStartupFailure())
                            .rootCause()
                            .hasMessageContaining("probeIntervalUnderLoad must be between 1ms and 1s, got 2s");
                });
        runner.withPropertyValues(
                        "outbox.relay.enabled=true",
                        "outbox.relay.bootstrap-servers=127.0.0.1:1",
                        "outbox.relay.probe-interval=0ms")
                .run(context -> assertThat(context.getStartupFailure())
                        .rootCause()
                        .hasMessageContaining("probeInterval must be between 1ms and 1s, got 0s"));
        runner.withPropertyValues(
                        "outbox.relay.enabled=true",
                        "outbox.relay.bootstrap-servers=127.0.0.1:1",
                        "outbox.relay.batch-bytes=2GB")
                .run(context -> assertThat(context.getStartupFailure())
                        .rootCause()
                        .hasMessageContaining("batchBytes must be between 1024 and 1073741824"));
    }

    @Test
    void describesEverySettingForIdeCompletion() throws Exception {
        String metadata;
        try (InputStream in = getClass().getResourceAsStream("/META-INF/spring-configuration-metadata.json")) {
            assertThat(in).as("the configuration processor ran").isNotNull();
            metadata = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        assertThat(metadata)
                .contains(
                        "\"outbox.idempotency.paths\"",
                        "\"outbox.migrations.enabled\"",
                        "\"outbox.relay.enabled\"",
                        "\"outbox.schema\"",
                        "\"defaultValue\": 64");
    }
}
