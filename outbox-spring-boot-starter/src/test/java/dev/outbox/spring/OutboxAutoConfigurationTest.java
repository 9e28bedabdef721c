package dev.outbox.spring;

import static org.assertj.core.api.Assertions.assertThat;

import dev.outbox.consumer.IdempotentConsumer;
import dev.outbox.core.Outbox;
import dev.outbox.core.Shards;
import dev.outbox.core.retry.Backoff;
import dev.outbox.http.server.IdempotencyFilter;
import dev.outbox.http.server.IdempotencyStore;
import dev.outbox.http.server.RequestFingerprint;
import dev.outbox.http.server.ResponsePolicy;
import dev.outbox.http.server.ScopeResolver;
import dev.outbox.relay.ParkPolicy;
import dev.outbox.relay.PublishMode;
import dev.outbox.relay.Relay;
import dev.outbox.relay.internal.RelayConfig;
import dev.outbox.schemas.AvroCodec;
import dev.outbox.spring.internal.EmbeddedRelay;
import dev.outbox.spring.internal.OutboxMigrationsInitializer;
import dev.outbox.spring.internal.OutboxPurges;
import dev.outbox.spring.internal.RestartableRelay;
import dev.outbox.spring.internal.SpringKafkaConnection;
import dev.outbox.spring.internal.SpringMvcGate;
import java.beans.PropertyDescriptor;
import java.io.InputStream;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Collectors;
import javax.sql.DataSource;
import org.junit.jupiter.api.Test;
import org.springframework.aop.framework.ProxyFactory;
import org.springframework.beans.BeanUtils;
import org.springframework.beans.factory.config.BeanPostProcessor;
import org.springframework.beans.factory.support.StaticListableBeanFactory;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.context.properties.bind.BindException;
import org.springframework.boot.kafka.autoconfigure.KafkaAutoConfiguration;
import org.springframework.boot.kafka.autoconfigure.KafkaConnectionDetails;
import org.springframework.boot.kafka.autoconfigure.KafkaProperties;
import org.springframework.boot.ssl.SslBundle;
import org.springframework.boot.ssl.SslStoreBundle;
import org.springframework.boot.test.context.FilteredClassLoader;
import org.springframework.boot.test.context.runner.AbstractApplicationContextRunner;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.boot.test.context.runner.ReactiveWebApplicationContextRunner;
import org.springframework.boot.test.context.runner.WebApplicationContextRunner;
import org.springframework.boot.web.servlet.FilterRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.jdbc.datasource.DataSourceTransactionManager;
import org.springframework.jdbc.datasource.DelegatingDataSource;
import org.springframework.jdbc.datasource.DriverManagerDataSource;
import org.springframework.jdbc.datasource.TransactionAwareDataSourceProxy;
import org.springframework.kafka.config.ConcurrentKafkaListenerContainerFactory;
import org.springframework.kafka.core.DefaultKafkaProducerFactory;
import org.springframework.kafka.listener.AfterRollbackProcessor;
import org.springframework.kafka.listener.CommonErrorHandler;
import org.springframework.kafka.listener.DefaultAfterRollbackProcessor;
import org.springframework.kafka.listener.DefaultErrorHandler;
import org.springframework.kafka.transaction.KafkaTransactionManager;
import org.springframework.mock.env.MockEnvironment;
import org.springframework.test.util.ReflectionTestUtils;
import org.springframework.transaction.PlatformTransactionManager;
import org.springframework.util.ReflectionUtils;

/**
 * The auto-configuration's conditions and settings, without a database: every context here has
 * the migrations turned off and a data source that is never connected to.
 */
class OutboxAutoConfigurationTest {
    private static final DataSource NEVER_CONNECTED = new DriverManagerDataSource("jdbc:postgresql://127.0.0.1:1/none");

    private static final String SCRAM_LOGIN =
            "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"shop\" password=\"s3cret\";";
    private static final String PLAIN_LOGIN =
            "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"shop\" password=\"s3cret\";";

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

    /**
     * G4 on the Spring Kafka path: the listener containers get an error handler that delivers a failed
     * record again and never skips it (Spring Kafka's default skips it after ten attempts), unless the
     * application has one of its own, turns it off, or has no Spring Kafka; its waits are checked. That
     * it never skips is shown by OutboxStarterIT on a real broker.
     */
    @Test
    void theListenersErrorHandlerNeverSkipsUnlessTheApplicationHasItsOwn() {
        runner.run(context -> assertThat(context)
                .hasNotFailed()
                .getBean(CommonErrorHandler.class)
                .isInstanceOf(DefaultErrorHandler.class));
        CommonErrorHandler own = new DefaultErrorHandler();
        runner.withBean(CommonErrorHandler.class, () -> own)
                .run(context ->
                        assertThat(context.getBean(CommonErrorHandler.class)).isSameAs(own));
        runner.withPropertyValues("outbox.listener-retries.enabled=false")
                .run(context -> assertThat(context).hasNotFailed().doesNotHaveBean(CommonErrorHandler.class));
        runner.withClassLoader(new FilteredClassLoader("org.springframework.kafka"))
                .run(context -> assertThat(context).hasNotFailed().hasSingleBean(OutboxTemplate.class));
        assertThat(refusalWithout("outbox.listener-retries.initial-interval=0s"))
                .startsWith("outbox.listener-retries.initial-interval=0s: the initial interval must be at least 1ms"
                        + " (the waits are whole milliseconds; a shorter one would retry without any wait), got 0s");
        // a wait below a millisecond was taken as 0: retries without any wait, forever
        assertThat(refusalWithout("outbox.listener-retries.initial-interval=500us"))
                .startsWith("outbox.listener-retries.initial-interval=500us: the initial interval must be at least"
                        + " 1ms");
        assertThat(refusalWithout("outbox.listener-retries.max-interval=5m"))
                .startsWith("outbox.listener-retries.max-interval=5m: the max interval must be between the initial"
                        + " interval (500ms) and 4m");
        assertThat(refusalWithout(
                        "outbox.listener-retries.initial-interval=2s", "outbox.listener-retries.max-interval=1s"))
                .startsWith("outbox.listener-retries.max-interval=1s: the max interval must be between the initial"
                        + " interval (2s) and 4m");
    }

    /**
     * In listener containers that run Kafka transactions, every failure of a listener rolls the
     * transaction back and the container's after-rollback processor runs: Spring Kafka's default one
     * "recovers" the record at every tenth failure (logging that its back-off is exhausted), and one of
     * the application's with a recoverer dead-letters it. Spring Boot gives the containers the single
     * {@code AfterRollbackProcessor} bean; the starter defines one, which never recovers, beside its
     * error handler, and not when the application has its own processor or its own error handler, or
     * turned the listener retries off. That it never recovers a record is shown by
     * KafkaTransactionsListenerIT on a real broker.
     */
    @Test
    void theListenersAfterRollbackProcessorNeverRecoversUnlessTheApplicationHasItsOwn() {
        ApplicationContextRunner kafka = runner.withConfiguration(AutoConfigurations.of(KafkaAutoConfiguration.class))
                .withPropertyValues("spring.kafka.producer.transaction-id-prefix=shop-tx-");
        kafka.run(context -> {
            assertThat(context).hasNotFailed().hasSingleBean(AfterRollbackProcessor.class);
            assertThat(context.getBean(AfterRollbackProcessor.class))
                    .as("the starter's")
                    .isNotInstanceOf(DefaultAfterRollbackProcessor.class);
            assertThat(ReflectionTestUtils.getField(
                            context.getBean(ConcurrentKafkaListenerContainerFactory.class), "afterRollbackProcessor"))
                    .as("the after-rollback processor of the containers Spring Boot builds")
                    .isSameAs(context.getBean(AfterRollbackProcessor.class));
        });
        AfterRollbackProcessor<Object, Object> own = new DefaultAfterRollbackProcessor<>();
        kafka.withBean(AfterRollbackProcessor.class, () -> own)
                .run(context -> assertThat(context.getBean(AfterRollbackProcessor.class))
                        .isSameAs(own));
        kafka.withBean(CommonErrorHandler.class, DefaultErrorHandler::new)
                .run(context -> assertThat(context).hasNotFailed().doesNotHaveBean(AfterRollbackProcessor.class));
        kafka.withPropertyValues("outbox.listener-retries.enabled=false")
                .run(context -> assertThat(context).hasNotFailed().doesNotHaveBean(AfterRollbackProcessor.class));
        // its waits are the error handler's, checked the same way
        assertThat(rootMessage(kafka.withPropertyValues("spring.kafka.consumer.properties.max.poll.interval.ms=20000")))
                .startsWith("outbox.listener-retries.max-interval=30s: the max interval must be between");
    }

    /**
     * The outbox.*.enabled properties are read as Spring Boot binds them into OutboxProperties: {@code
     * on}, {@code yes} and {@code 1} (any case) are true, {@code off}, {@code no} and {@code 0} false.
     * Spring Boot's {@code @ConditionalOnProperty(havingValue = "true")} compared the text instead: {@code
     * outbox.relay.enabled=on} bound true and created no relay, {@code outbox.listener-retries.enabled=1}
     * left Spring Kafka's default error handler (which skips a record after ten attempts), {@code
     * outbox.idempotency.gate.enabled=yes} turned the gate off and {@code outbox.migrations.enabled=yes}
     * skipped the migrations.
     */
    @Test
    void theEnabledPropertiesAreReadAsTheBinderReadsThem() {
        for (String value : List.of("on", "yes", "1", "ON", "Yes", "true")) {
            assertEnabledBy(value, true);
        }
        for (String value : List.of("off", "no", "0", "OFF", "No", "false")) {
            assertEnabledBy(value, false);
        }
    }

    /**
     * A value of an outbox.*.enabled property that is no boolean fails the start with the binder's
     * error, naming the property and the value, as it does for the properties class.
     */
    @Test
    void anEnabledPropertyThatIsNoBooleanFailsTheStartNamingIt() {
        for (String property : List.of(
                "outbox.relay.enabled",
                "outbox.listener-retries.enabled",
                "outbox.migrations.enabled",
                "outbox.idempotency.gate.enabled")) {
            web.withPropertyValues(property + "=maybe").run(context -> {
                assertThat(context).hasFailed();
                assertThat(context.getStartupFailure())
                        .as(property)
                        .hasRootCauseMessage("Invalid boolean value 'maybe'");
                Throwable bind = context.getStartupFailure();
                while (bind != null && !(bind instanceof BindException)) {
                    bind = bind.getCause();
                }
                assertThat(bind)
                        .as("the binder's error among the causes, %s", property)
                        .hasMessage("Failed to bind properties under '" + property + "' to java.lang.Boolean");
            });
        }
    }

    /** Asserts what {@code outbox.<feature>.enabled=<value>} turns on, {@code enabled} saying whether it is true. */
    private void assertEnabledBy(String value, boolean enabled) {
        runner.withBean(Relay.class, IdleRelay::new)
                .withPropertyValues("outbox.relay.enabled=" + value)
                .run(context -> assertThat(context)
                        .hasNotFailed()
                        .getBeans(EmbeddedRelay.class)
                        .as("the embedded relay with outbox.relay.enabled=%s", value)
                        .hasSize(enabled ? 1 : 0));
        ApplicationContextRunner withoutRelay = runner.withClassLoader(new FilteredClassLoader(Relay.class))
                .withPropertyValues("outbox.relay.enabled=" + value);
        if (enabled) {
            assertThat(rootMessage(withoutRelay)).contains("dev.outbox:outbox-relay is not on the class path");
        } else {
            withoutRelay.run(context -> assertThat(context).hasNotFailed());
        }
        runner.withPropertyValues("outbox.listener-retries.enabled=" + value)
                .run(context -> assertThat(context)
                        .hasNotFailed()
                        .getBeans(CommonErrorHandler.class)
                        .as("the listeners' error handler with outbox.listener-retries.enabled=%s", value)
                        .hasSize(enabled ? 1 : 0));
        web.withPropertyValues("outbox.idempotency.gate.enabled=" + value)
                .run(context -> assertThat(context)
                        .hasNotFailed()
                        .getBeans(SpringMvcGate.class)
                        .as("the start-up gate with outbox.idempotency.gate.enabled=%s", value)
                        .hasSize(enabled ? 1 : 0));
        ApplicationContextRunner withoutFlyway =
                withoutFlyway().withPropertyValues("outbox.migrations.enabled=" + value);
        if (enabled) {
            assertThat(rootMessage(withoutFlyway)).contains("Flyway is not on the class path");
        } else {
            withoutFlyway.run(context -> assertThat(context).hasNotFailed());
        }
    }

    /** @return a context of the starter whose migrations would need Flyway, which is not on its class path */
    private static ApplicationContextRunner withoutFlyway() {
        return new ApplicationContextRunner()
                .withConfiguration(AutoConfigurations.of(OutboxAutoConfiguration.class))
                .withBean(DataSource.class, () -> NEVER_CONNECTED)
                .withClassLoader(new FilteredClassLoader("org.flywaydb"));
    }

    /** An application's own relay that does nothing, so that the starter's embedded-relay lifecycle runs it. */
    private static final class IdleRelay implements Relay {
        @Override
        public void start() {}

        @Override
        public void close() {}

        @Override
        public String instanceId() {
            return "idle";
        }

        @Override
        public Set<Integer> ownedShards() {
            return Set.of();
        }

        @Override
        public boolean isLive() {
            return true;
        }

        @Override
        public boolean isReady() {
            return true;
        }
    }

    /**
     * The listener retries wait in the consumer's poll loop: their longest wait is checked against the
     * poll interval the listener consumers are given, not Kafka's default. With max.poll.interval.ms at
     * 20 s, the default max-interval of 30 s would put the consumer out of its group at every long
     * wait; it started before.
     */
    @Test
    void theListenersLongestWaitFitsTheConsumersPollInterval() {
        ApplicationContextRunner kafka = runner.withConfiguration(AutoConfigurations.of(KafkaAutoConfiguration.class));
        assertThat(rootMessage(kafka.withPropertyValues("spring.kafka.consumer.properties.max.poll.interval.ms=20000")))
                .startsWith(
                        "outbox.listener-retries.max-interval=30s: the max interval must be between the initial"
                                + " interval (500ms) and 16s (four fifths of the listener consumers' max.poll.interval.ms, 20s:")
                .endsWith("lower it, or raise max.poll.interval.ms");
        kafka.withPropertyValues(
                        "spring.kafka.consumer.properties.max.poll.interval.ms=20000",
                        "outbox.listener-retries.max-interval=15s")
                .run(context -> assertThat(context).hasNotFailed().hasSingleBean(CommonErrorHandler.class));
        kafka.run(context -> assertThat(context).hasNotFailed().hasSingleBean(CommonErrorHandler.class));
    }

    /**
     * Migrations on (the default) without Flyway on the class path (a team on Liquibase that added the
     * starter alone) fail the start naming both ways out: add Flyway, or outbox.migrations.enabled=false.
     * Before, the message named only Flyway and the plain SQL scripts, not the property that turns the
     * migrations off.
     */
    @Test
    void migrationsWithoutFlywayFailTheStartNamingThePropertyThatTurnsThemOff() {
        String message = rootMessage(new ApplicationContextRunner()
                .withConfiguration(AutoConfigurations.of(OutboxAutoConfiguration.class))
                .withBean(DataSource.class, () -> NEVER_CONNECTED)
                .withClassLoader(new FilteredClassLoader("org.flywaydb")));
        assertThat(message)
                .contains("Flyway is not on the class path")
                .contains("org.flywaydb:flyway-core")
                .contains("set outbox.migrations.enabled=false");
    }

    /**
     * Settings that ask for protection or publishing fail the start when there is no single DataSource,
     * rather than leave the endpoints unprotected and the outbox unpublished: before, the whole starter
     * backed off without a word.
     */
    @Test
    void settingsThatNeedTheOutboxFailTheStartWithoutASingleDataSource() {
        ApplicationContextRunner checked = new ApplicationContextRunner()
                .withConfiguration(AutoConfigurations.of(OutboxAutoConfiguration.class, OutboxDataSourceCheck.class));
        checked.run(context -> assertThat(context).hasNotFailed().doesNotHaveBean(OutboxTemplate.class));
        assertThat(rootMessage(checked.withPropertyValues("outbox.relay.enabled=true")))
                .startsWith("outbox.relay.enabled=true, but the application has no DataSource bean, so the outbox"
                        + " starter configured nothing");
        assertThat(rootMessage(checked.withBean("orders", DataSource.class, () -> NEVER_CONNECTED)
                        .withBean("reports", DataSource.class, () -> NEVER_CONNECTED)
                        .withPropertyValues(
                                "outbox.idempotency.paths[0]=/orders", "outbox.idempotency.paths[1]=/refunds")))
                .startsWith("outbox.idempotency.paths=/orders,/refunds, but the application has 2 DataSource beans and"
                        + " none is @Primary [orders, reports]");
        checked.withBean(DataSource.class, () -> NEVER_CONNECTED)
                .withPropertyValues("outbox.migrations.enabled=false", "outbox.idempotency.paths=/orders")
                .run(context -> assertThat(context).hasNotFailed().hasSingleBean(OutboxTemplate.class));
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
            // else the container refuses async processing (SSE, a Callable) to a GET on these paths too
            assertThat(registration.isAsyncSupported()).isTrue();
        });
        web.run(context -> assertThat(context).hasNotFailed().doesNotHaveBean(IdempotencyFilter.class));
    }

    /**
     * G5: a transaction manager that does not manage the key store's DataSource (one of another
     * DataSource, made single or {@code @Primary}; Spring Kafka's) fails the start, naming it and the
     * fix: the key's statements would run in autocommit mode, and the store refuses them. One of the
     * same DataSource starts, also behind a proxy or over a wrapper of it. Before, the application
     * started, and a request's key committed on its own and answered 409 to every retry.
     */
    @Test
    void aTransactionManagerOfAnotherResourceFailsTheStart() {
        WebApplicationContextRunner covered = new WebApplicationContextRunner()
                .withConfiguration(AutoConfigurations.of(OutboxAutoConfiguration.class))
                .withBean(DataSource.class, () -> NEVER_CONNECTED)
                .withPropertyValues("outbox.migrations.enabled=false", "outbox.idempotency.paths=/orders");
        DataSource other = new DriverManagerDataSource("jdbc:postgresql://127.0.0.1:1/other");
        assertThat(rootMessage(covered.withBean(
                        PlatformTransactionManager.class, () -> new DataSourceTransactionManager(other))))
                .startsWith("outbox.idempotency.paths is set, but the transaction manager the Idempotency-Key filter"
                        + " begins its transactions with (org.springframework.jdbc.datasource.DataSourceTransactionManager,"
                        + " the single or @Primary PlatformTransactionManager) manages another DataSource")
                .contains("The key's statements would run outside any transaction")
                .contains("Make a transaction manager of this DataSource");
        DefaultKafkaProducerFactory<String, String> producers = new DefaultKafkaProducerFactory<>(Map.of());
        producers.setTransactionIdPrefix("orders-");
        assertThat(rootMessage(covered.withBean(
                        PlatformTransactionManager.class, () -> new KafkaTransactionManager<>(producers))))
                .contains("KafkaTransactionManager, the single or @Primary PlatformTransactionManager) manages Kafka"
                        + " producers, no DataSource");

        ProxyFactory proxy = new ProxyFactory(new DataSourceTransactionManager(NEVER_CONNECTED));
        covered.withBean(PlatformTransactionManager.class, () -> (PlatformTransactionManager) proxy.getProxy())
                .run(context -> assertThat(context).hasNotFailed().hasSingleBean(IdempotencyStore.class));
        covered.withBean(
                        PlatformTransactionManager.class,
                        () -> new DataSourceTransactionManager(new TransactionAwareDataSourceProxy(NEVER_CONNECTED)))
                .run(context -> assertThat(context).hasNotFailed().hasSingleBean(IdempotencyStore.class));
        // the same pool behind a wrapper on one side only: Spring binds the transaction's connection under the
        // wrapper, and the store, asking under the pool, would get a connection of its own
        assertThat(rootMessage(covered.withBean(
                        PlatformTransactionManager.class,
                        () -> new DataSourceTransactionManager(new DelegatingDataSource(NEVER_CONNECTED)))))
                .contains("manages another DataSource");
    }

    /**
     * G5: an application that registers the filter itself (other paths or order, or turned off) gets
     * the starter's registration turned off, so the filter does not run twice or against the
     * application's wish. Before, the starter's registration backed off only for its own bean name.
     */
    @Test
    void aRegistrationOfTheApplicationsOwnTurnsTheStartersOff() {
        web.withPropertyValues("outbox.idempotency.paths=/orders")
                .withUserConfiguration(OwnRegistration.class)
                .run(context -> {
                    assertThat(context).hasNotFailed();
                    assertThat(context.getBean(
                                            OutboxAutoConfiguration.FILTER_REGISTRATION_BEAN,
                                            FilterRegistrationBean.class)
                                    .isEnabled())
                            .isFalse();
                    FilterRegistrationBean<?> own = context.getBean("ownRegistration", FilterRegistrationBean.class);
                    assertThat(own.getUrlPatterns()).containsExactly("/v2/orders");
                });
        web.withPropertyValues("outbox.idempotency.paths=/orders")
                .run(context -> assertThat(context.getBean(
                                        OutboxAutoConfiguration.FILTER_REGISTRATION_BEAN, FilterRegistrationBean.class)
                                .isEnabled())
                        .isTrue());
    }

    @Configuration(proxyBeanMethods = false)
    static class OwnRegistration {
        @Bean
        FilterRegistrationBean<IdempotencyFilter> ownRegistration(IdempotencyFilter filter) {
            FilterRegistrationBean<IdempotencyFilter> registration = new FilterRegistrationBean<>(filter);
            registration.addUrlPatterns("/v2/orders");
            return registration;
        }
    }

    /**
     * G5 is not silently off: paths to protect in a web application that cannot run the servlet filter
     * (a reactive one) fail the start, naming the setting; an application that serves no HTTP (a test
     * without a web environment, a worker) starts.
     */
    @Test
    void pathsToProtectInAWebApplicationWithoutTheServletFilterFailTheStart() {
        new ReactiveWebApplicationContextRunner()
                .withConfiguration(AutoConfigurations.of(OutboxAutoConfiguration.class))
                .withBean(DataSource.class, () -> NEVER_CONNECTED)
                .withPropertyValues("outbox.migrations.enabled=false", "outbox.idempotency.paths=/payments")
                .run(context -> {
                    assertThat(context).hasFailed();
                    assertThat(context.getStartupFailure())
                            .hasMessageContaining("outbox.idempotency.paths is /payments")
                            .hasMessageContaining("would run unprotected");
                });
        runner.withPropertyValues("outbox.idempotency.paths=/payments")
                .run(context -> assertThat(context).hasNotFailed().doesNotHaveBean(IdempotencyFilter.class));
    }

    /** G1 is not silently off: an embedded relay asked for without the relay on the class path fails the start. */
    @Test
    void anEmbeddedRelayWithoutTheRelayOnTheClassPathFailsTheStart() {
        runner.withClassLoader(new FilteredClassLoader(Relay.class))
                .withPropertyValues("outbox.relay.enabled=true")
                .run(context -> {
                    assertThat(context).hasFailed();
                    assertThat(context.getStartupFailure())
                            .hasMessageContaining("dev.outbox:outbox-relay is not on the class path");
                });
        runner.withClassLoader(new FilteredClassLoader(Relay.class))
                .run(context -> assertThat(context).hasNotFailed());
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
        assertThat(relay.getMaxAttempts()).isEqualTo(Relay.Builder.DEFAULT_MAX_ATTEMPTS);
        assertThat(relay.getParkPolicy().name()).isEqualTo(Relay.Builder.DEFAULT_PARK_POLICY.name());
        assertThat(relay.getPublishMode().name()).isEqualTo(Relay.Builder.DEFAULT_PUBLISH_MODE.name());
        assertThat(relay.getTransactionalIdPrefix()).isNull();
        assertThat(relay.getShutdownTimeout()).isEqualTo(Relay.Builder.DEFAULT_SHUTDOWN_TIMEOUT);
        assertThat(relay.getBackoffBase()).isEqualTo(Relay.Builder.DEFAULT_BACKOFF.base());
        assertThat(relay.getBackoffCap()).isEqualTo(Relay.Builder.DEFAULT_BACKOFF.cap());
        assertThat(relay.getBreakerFailureThreshold()).isEqualTo(Relay.Builder.DEFAULT_BREAKER_FAILURE_THRESHOLD);
        assertThat(relay.getBreakerOpenDuration()).isEqualTo(Relay.Builder.DEFAULT_BREAKER_OPEN_DURATION);
        assertThat(relay.getInstanceId()).isNull();
        assertThat(relay.getBootstrapServers()).isNull();
        assertThat(relay.getProducer()).isEmpty();
    }

    @Test
    void theParkPolicyAndPublishModeHaveTheRelaysConstants() {
        assertThat(Arrays.stream(OutboxProperties.Relay.ParkPolicy.values()).map(Enum::name))
                .containsExactly(
                        Arrays.stream(ParkPolicy.values()).map(Enum::name).toArray(String[]::new));
        assertThat(Arrays.stream(OutboxProperties.Relay.PublishMode.values()).map(Enum::name))
                .containsExactly(
                        Arrays.stream(PublishMode.values()).map(Enum::name).toArray(String[]::new));
    }

    @Test
    void everyBuilderSettingHasAProperty() {
        Set<String> relayProperties = writableProperties(OutboxProperties.Relay.class);
        Set<String> outboxProperties = writableProperties(OutboxProperties.class);
        Set<String> setters = Arrays.stream(Relay.Builder.class.getMethods())
                .filter(m -> !Modifier.isStatic(m.getModifiers()))
                .filter(m -> m.getReturnType() == Relay.Builder.class && m.getParameterCount() == 1)
                .map(Method::getName)
                .collect(Collectors.toCollection(TreeSet::new));
        assertThat(setters).as("the builder's setters").contains("batchSize", "maxAttempts", "vacuumAfterRows");
        // the application's own objects, and LISTEN, which needs a data source of session connections
        setters.removeAll(Set.of("dataSource", "meterRegistry", "producerProperties", "listenDataSource"));
        List<String> missing = new ArrayList<>();
        for (String setter : setters) {
            List<String> expected = switch (setter) {
                case "backoff" -> List.of("backoffBase", "backoffCap");
                case "circuitBreaker" -> List.of("breakerFailureThreshold", "breakerOpenDuration");
                default -> List.of(setter);
            };
            for (String property : expected) {
                // the schema is the outbox's, outbox.schema
                Set<String> owner = setter.equals("schema") ? outboxProperties : relayProperties;
                if (!owner.contains(property)) {
                    missing.add(setter + " -> " + property);
                }
            }
        }
        assertThat(missing)
                .as("Relay.Builder setters without a property of OutboxProperties.Relay (outbox.relay.*)")
                .isEmpty();
    }

    @Test
    void everyIdempotencyStoreSettingHasAProperty() {
        // dsl and dataSource: the application's DataSource, in Spring's transactions; meterRegistry: the
        // application's registry; clock: for tests only, expiry follows the servers' clocks;
        // onRollBackAndStore: the starter clears JPA's persistence context; refusalsInTransactionOfTheirOwn:
        // always on under Spring's transaction synchronisations
        assertThat(settingsWithoutAProperty(
                        IdempotencyStore.Builder.class,
                        Set.of(
                                "dsl",
                                "dataSource",
                                "meterRegistry",
                                "clock",
                                "onRollBackAndStore",
                                "refusalsInTransactionOfTheirOwn"),
                        Set.of("lockTimeout", "holdTimeout", "purgeBatchSize")))
                .as("IdempotencyStore.Builder setters without a property (outbox.idempotency.*)")
                .isEmpty();
    }

    @Test
    void everyIdempotencyFilterSettingHasAProperty() {
        // meterRegistry: the application's registry; scopeResolver, fingerprint and responsePolicy are
        // objects: the application's bean of their type replaces the default (theFilterTakesTheApplicationsBeans)
        assertThat(settingsWithoutAProperty(
                        IdempotencyFilter.Builder.class,
                        Set.of("meterRegistry", "scopeResolver", "fingerprint", "responsePolicy"),
                        Set.of("paths", "methods", "storedHeaders", "maxBodyBytes", "maxResponseBytes")))
                .as("IdempotencyFilter.Builder setters without a property (outbox.idempotency.*)")
                .isEmpty();
    }

    @Test
    void everyOutboxSettingHasAProperty() {
        // codec: an object, the application's AvroCodec bean replaces the default; traceparent: a
        // Supplier<String> is no setting and too plain a type to look up as a bean, and setting it would
        // replace the OpenTelemetry capture: define an Outbox bean of your own for it
        assertThat(settingsWithoutAProperty(
                        Outbox.Builder.class, Set.of("codec", "traceparent"), Set.of("notifyInTransaction")))
                .as("Outbox.Builder setters without a property (outbox.*)")
                .isEmpty();
    }

    /**
     * @return the setters of {@code builder} that have no property of the same name: {@code schema}
     *     and {@code shards} among {@code outbox.*}, {@code notifyInTransaction} too, the others among
     *     {@code outbox.idempotency.*}
     */
    private static List<String> settingsWithoutAProperty(
            Class<?> builder, Set<String> leftOut, Set<String> someExpected) {
        Set<String> outboxProperties = writableProperties(OutboxProperties.class);
        Set<String> idempotencyProperties = writableProperties(OutboxProperties.Idempotency.class);
        Set<String> setters = Arrays.stream(builder.getMethods())
                .filter(m -> !Modifier.isStatic(m.getModifiers()))
                .filter(m -> m.getReturnType() == builder && m.getParameterCount() == 1)
                .map(Method::getName)
                .collect(Collectors.toCollection(TreeSet::new));
        assertThat(setters)
                .as("the builder's setters")
                .containsAll(someExpected)
                .containsAll(leftOut);
        setters.removeAll(leftOut);
        List<String> missing = new ArrayList<>();
        for (String setter : setters) {
            boolean outboxWide = Set.of("schema", "shards").contains(setter) || builder == Outbox.Builder.class;
            Set<String> owner = outboxWide ? outboxProperties : idempotencyProperties;
            if (!owner.contains(setter)) {
                missing.add(setter);
            }
        }
        return missing;
    }

    private static Set<String> writableProperties(Class<?> type) {
        return Arrays.stream(BeanUtils.getPropertyDescriptors(type))
                .filter(d -> d.getWriteMethod() != null && d.getReadMethod() != null)
                .map(PropertyDescriptor::getName)
                .collect(Collectors.toCollection(TreeSet::new));
    }

    @Test
    void theIdempotencyOutboxAndPurgeDefaultsAreTheLibraries() {
        OutboxProperties properties = new OutboxProperties();
        OutboxProperties.Idempotency p = properties.getIdempotency();
        assertThat(p.getTtl()).isEqualTo(IdempotencyStore.Builder.DEFAULT_TTL);
        assertThat(p.getLockTimeout()).isEqualTo(IdempotencyStore.Builder.DEFAULT_LOCK_TIMEOUT);
        assertThat(p.getRetryAfter()).isEqualTo(IdempotencyStore.Builder.DEFAULT_RETRY_AFTER);
        assertThat(p.getHoldTimeout()).isEqualTo(IdempotencyStore.Builder.DEFAULT_HOLD_TIMEOUT);
        assertThat(p.getPurgeBatchSize()).isEqualTo(IdempotencyStore.Builder.DEFAULT_PURGE_BATCH_SIZE);
        assertThat(p.getName())
                .isEqualTo(IdempotencyStore.Builder.DEFAULT_NAME)
                .isEqualTo(IdempotencyFilter.Builder.DEFAULT_NAME);
        assertThat(p.getMaxBodyBytes()).isEqualTo(IdempotencyFilter.Builder.DEFAULT_MAX_BODY_BYTES);
        assertThat(p.getMaxResponseBytes()).isEqualTo(IdempotencyFilter.Builder.DEFAULT_MAX_RESPONSE_BYTES);
        assertThat(p.getStoredHeaders()).isEqualTo(IdempotencyFilter.Builder.DEFAULT_STORED_HEADERS);
        assertThat(p.getMethods()).containsExactlyInAnyOrderElementsOf(IdempotencyFilter.Builder.DEFAULT_METHODS);
        assertThat(p.getApplication())
                .as("none, as the store's default: an upgrade keeps the keys' scopes")
                .isEmpty();
        assertThat(p.getPurgeInterval()).isEqualTo(Duration.ofMinutes(5));
        assertThat(properties.getProcessed().getRetention()).isEqualTo(IdempotentConsumer.Builder.DEFAULT_RETENTION);
        assertThat(properties.getProcessed().getPurgeInterval())
                .isEqualTo(IdempotentConsumer.Builder.DEFAULT_PURGE_INTERVAL);
        assertThat(properties.isNotifyInTransaction()).isFalse();
        assertThat(properties.getShards()).isEqualTo(Shards.DEFAULT_COUNT);
    }

    @Test
    void everyIdempotencySettingReachesTheStoreAndTheFilter() {
        web.withPropertyValues(
                        "outbox.idempotency.paths=/orders",
                        "outbox.idempotency.methods=POST,PUT",
                        "outbox.idempotency.ttl=2h",
                        "outbox.idempotency.lock-timeout=500ms",
                        "outbox.idempotency.retry-after=3s",
                        "outbox.idempotency.hold-timeout=30s",
                        "outbox.idempotency.purge-batch-size=200",
                        "outbox.idempotency.name=shop",
                        "outbox.idempotency.application=shop-service",
                        "outbox.idempotency.max-body-bytes=2048",
                        "outbox.idempotency.max-response-bytes=4096",
                        "outbox.idempotency.stored-headers=Content-Type,X-Request-Id")
                .run(context -> {
                    assertThat(context).hasNotFailed();
                    IdempotencyStore store = context.getBean(IdempotencyStore.class);
                    assertThat(store.ttl()).isEqualTo(Duration.ofHours(2));
                    assertThat(ReflectionTestUtils.getField(store, "lockTimeoutNanos"))
                            .isEqualTo(Duration.ofMillis(500).toNanos());
                    assertThat(ReflectionTestUtils.getField(store, "retryAfter"))
                            .isEqualTo(Duration.ofSeconds(3));
                    assertThat(ReflectionTestUtils.getField(store, "holdTimeoutMillis"))
                            .isEqualTo(30_000L);
                    assertThat(ReflectionTestUtils.getField(store, "purgeBatchSize"))
                            .isEqualTo(200);
                    assertThat((String) ReflectionTestUtils.getField(store, "log"))
                            .contains("shop");
                    assertThat(ReflectionTestUtils.getField(store, "application"))
                            .isEqualTo("app:shop-service ");
                    IdempotencyFilter filter = context.getBean(IdempotencyFilter.class);
                    assertThat(ReflectionTestUtils.getField(filter, "storedHeaders"))
                            .isEqualTo(List.of("Content-Type", "X-Request-Id"));
                    assertThat(ReflectionTestUtils.getField(filter, "methods")).isEqualTo(Set.of("POST", "PUT"));
                    assertThat((String) ReflectionTestUtils.getField(filter, "log"))
                            .contains("shop");
                    Object admission = ReflectionTestUtils.getField(filter, "admission");
                    assertThat(ReflectionTestUtils.getField(admission, "maxBodyBytes"))
                            .isEqualTo(2048);
                    assertThat(ReflectionTestUtils.getField(filter, "maxResponseBytes"))
                            .isEqualTo(4096);
                });
    }

    /**
     * The store's application is opt-in: without outbox.idempotency.application the keys keep the
     * scopes of earlier versions, even where spring.application.name is set (an upgrade must not make
     * the retries of stored requests run again); set, it may name Boot's application name.
     */
    @Test
    void theKeysApplicationIsSetOnlyWhenGiven() {
        web.withPropertyValues("outbox.idempotency.paths=/orders", "spring.application.name=shop")
                .run(context -> {
                    assertThat(context).hasNotFailed();
                    assertThat(ReflectionTestUtils.getField(context.getBean(IdempotencyStore.class), "application"))
                            .isEqualTo("");
                });
        web.withPropertyValues(
                        "outbox.idempotency.paths=/orders",
                        "spring.application.name=shop",
                        "outbox.idempotency.application=${spring.application.name}")
                .run(context -> {
                    assertThat(context).hasNotFailed();
                    assertThat(ReflectionTestUtils.getField(context.getBean(IdempotencyStore.class), "application"))
                            .isEqualTo("app:shop ");
                });
    }

    @Test
    void theFilterTakesTheApplicationsBeans() {
        RequestFingerprint fingerprint = RequestFingerprint.sha256();
        ResponsePolicy policy = status -> ResponsePolicy.Action.COMMIT;
        ScopeResolver scope = ScopeResolver.principalOrAnonymous();
        web.withPropertyValues("outbox.idempotency.paths=/orders")
                .withBean(RequestFingerprint.class, () -> fingerprint)
                .withBean(ResponsePolicy.class, () -> policy)
                .withBean(ScopeResolver.class, () -> scope)
                .run(context -> {
                    assertThat(context).hasNotFailed();
                    IdempotencyFilter filter = context.getBean(IdempotencyFilter.class);
                    assertThat(ReflectionTestUtils.getField(filter, "fingerprint"))
                            .isSameAs(fingerprint);
                    assertThat(ReflectionTestUtils.getField(filter, "responsePolicy"))
                            .isSameAs(policy);
                    assertThat(ReflectionTestUtils.getField(filter, "scopeResolver"))
                            .isSameAs(scope);
                });
    }

    @Test
    void notifyInTransactionAndAnAvroCodecReachTheOutbox() {
        AvroCodec codec = AvroCodec.create();
        runner.withPropertyValues("outbox.notify-in-transaction=true")
                .withBean(AvroCodec.class, () -> codec)
                .run(context -> {
                    assertThat(context).hasNotFailed();
                    Object outbox = unwrapped(context.getBean(Outbox.class));
                    assertThat(ReflectionTestUtils.getField(outbox, "notifyInTransaction"))
                            .isEqualTo(true);
                    assertThat(ReflectionTestUtils.getField(outbox, "codec")).isSameAs(codec);
                });
        runner.run(context -> assertThat(
                        ReflectionTestUtils.getField(unwrapped(context.getBean(Outbox.class)), "notifyInTransaction"))
                .isEqualTo(false));
    }

    /** @return the outbox under the OpenTelemetry wrapper, when the API is on the class path */
    private static Object unwrapped(Outbox outbox) {
        return ReflectionUtils.findField(outbox.getClass(), "delegate") != null
                ? ReflectionTestUtils.getField(outbox, "delegate")
                : outbox;
    }

    @Test
    void aRefusedIdempotencySettingNamesItsProperty() {
        assertThat(webRefusal("outbox.idempotency.lock-timeout=0s"))
                .startsWith("outbox.idempotency.lock-timeout=0s: lockTimeout must be between 1ms and 10m, got 0s");
        assertThat(webRefusal("outbox.idempotency.ttl=-1h"))
                .startsWith("outbox.idempotency.ttl=-1h: ttl must be positive, got -1h");
        assertThat(webRefusal("outbox.idempotency.retry-after=2h"))
                .startsWith("outbox.idempotency.retry-after=2h: retryAfter must be between 0s and 1h, got 2h");
        assertThat(webRefusal("outbox.idempotency.hold-timeout=500ms"))
                .startsWith("outbox.idempotency.hold-timeout=500ms: holdTimeout must be between 1s and 1d, got 500ms");
        assertThat(webRefusal("outbox.idempotency.purge-batch-size=0"))
                .startsWith(
                        "outbox.idempotency.purge-batch-size=0: purgeBatchSize must be between 1 and 100000, got 0");
        assertThat(webRefusal("outbox.idempotency.max-body-bytes=-1"))
                .startsWith(
                        "outbox.idempotency.max-body-bytes=-1: maxBodyBytes must be between 0 and 67108864, got -1");
        assertThat(webRefusal("outbox.idempotency.max-response-bytes=-1"))
                .startsWith("outbox.idempotency.max-response-bytes=-1: maxResponseBytes must be between 0 and"
                        + " 268435456, got -1");
        assertThat(webRefusal("outbox.idempotency.name= "))
                .startsWith("outbox.idempotency.name=")
                .contains(": name may not be blank");
        assertThat(webRefusal("outbox.idempotency.application=order service"))
                .startsWith("outbox.idempotency.application=order service: application must be 1 to 64 ASCII letters,"
                        + " digits, '.', '_' or '-', got 'order service'");
        assertThat(webRefusal("outbox.idempotency.purge-interval=500ms"))
                .startsWith("outbox.idempotency.purge-interval=500ms: purgeInterval must be zero (off) or at least 1s,"
                        + " got 500ms");
    }

    @Test
    void aRefusedEntryOfAListIsNamedByItsIndex() {
        // Spring keeps the empty entry after a trailing comma
        assertThat(webRefusal("outbox.idempotency.paths=/orders,"))
                .startsWith("outbox.idempotency.paths=/orders,: outbox.idempotency.paths[1] is \"\": path pattern ''"
                        + " is not supported");
        assertThat(webRefusal("outbox.idempotency.paths=/orders,/payments/*/refunds"))
                .startsWith("outbox.idempotency.paths=/orders,/payments/*/refunds: outbox.idempotency.paths[1] is"
                        + " \"/payments/*/refunds\": path pattern '/payments/*/refunds' is not supported");
        assertThat(webRefusal("outbox.idempotency.methods=POST,GE-T"))
                .startsWith("outbox.idempotency.methods=POST,GE-T: outbox.idempotency.methods[1] is \"GE-T\": method"
                        + " 'GE-T' is not an HTTP method");
        assertThat(webRefusal("outbox.idempotency.stored-headers=Content-Type,Set-Cookie"))
                .startsWith("outbox.idempotency.stored-headers=Content-Type,Set-Cookie:"
                        + " outbox.idempotency.stored-headers[1] is \"Set-Cookie\": ");
        assertThat(webRefusal("outbox.idempotency.methods="))
                .startsWith("outbox.idempotency.methods=: methods may not be empty");
    }

    @Test
    void aRefusedOutboxOrPurgeSettingNamesItsProperty() {
        assertThat(refusalWithout("outbox.shards=0"))
                .startsWith("outbox.shards=0: shards must be between 1 and 4096, got 0");
        assertThat(refusalWithout("outbox.schema=Shop-Outbox"))
                .startsWith("outbox.schema=Shop-Outbox: schema \"Shop-Outbox\" is not a plain SQL identifier");
        // the migrations check before they connect
        assertThat(refusalWithout("outbox.migrations.enabled=true", "outbox.shards=5000"))
                .startsWith("outbox.shards=5000: shards must be between 1 and 4096, got 5000");
        assertThat(refusalWithout("outbox.processed.retention=30m"))
                .startsWith("outbox.processed.retention=30m: retention must be at least 1h, got 30m");
        assertThat(refusalWithout("outbox.processed.purge-interval=-1s"))
                .startsWith("outbox.processed.purge-interval=-1s: purgeInterval must be zero (off) or at least 1s,"
                        + " got -1s");
    }

    @Test
    void thePurgesAreScheduledAsConfigured() {
        web.withPropertyValues("outbox.idempotency.paths=/orders").run(context -> {
            assertThat(context).hasNotFailed();
            OutboxPurges purges = context.getBean(OutboxPurges.class);
            assertThat(purges.isRunning()).isTrue();
            assertThat(scheduled(purges))
                    .containsExactly(
                            OutboxPurges.IDEMPOTENCY_KEYS + " " + Duration.ofMinutes(5),
                            OutboxPurges.PROCESSED_MESSAGES + " " + IdempotentConsumer.Builder.DEFAULT_PURGE_INTERVAL);
            assertThat(Thread.getAllStackTraces().keySet())
                    .anySatisfy(t -> assertThat(t.getName()).isEqualTo(OutboxPurges.THREAD));
        });
        // without the filter, only the claims; 0s turns each off
        runner.run(context -> assertThat(scheduled(context.getBean(OutboxPurges.class)))
                .containsExactly(
                        OutboxPurges.PROCESSED_MESSAGES + " " + IdempotentConsumer.Builder.DEFAULT_PURGE_INTERVAL));
        web.withPropertyValues(
                        "outbox.idempotency.paths=/orders",
                        "outbox.idempotency.purge-interval=0s",
                        "outbox.processed.purge-interval=0s")
                .run(context -> assertThat(scheduled(context.getBean(OutboxPurges.class)))
                        .isEmpty());
    }

    /** @return the purges that run, each as kind and interval */
    private static List<String> scheduled(OutboxPurges purges) {
        @SuppressWarnings("unchecked")
        List<OutboxPurges.Purge> all = (List<OutboxPurges.Purge>) ReflectionTestUtils.getField(purges, "purges");
        return all.stream()
                .filter(p -> !p.interval().isZero())
                .map(p -> p.kind() + " " + p.interval())
                .toList();
    }

    /** @return the message of the failure that stopped the start of the web context with these settings */
    private String webRefusal(String... properties) {
        return rootMessage(
                web.withPropertyValues("outbox.idempotency.paths=/orders").withPropertyValues(properties));
    }

    /** @return the message of the failure that stopped the start of the plain context with these settings */
    private String refusalWithout(String... properties) {
        return rootMessage(runner.withPropertyValues(properties));
    }

    private static String rootMessage(AbstractApplicationContextRunner<?, ?, ?> runner) {
        AtomicReference<Throwable> failure = new AtomicReference<>();
        runner.run(context -> failure.set(context.getStartupFailure()));
        assertThat(failure.get()).as("the start failed").isNotNull();
        Throwable root = failure.get();
        while (root.getCause() != null) {
            root = root.getCause();
        }
        return root.getMessage();
    }

    @Test
    void everySettingReachesTheRelay() {
        RelayConfig config = builtRelay(
                "outbox.schema=shop_outbox",
                "outbox.relay.instance-id=relay-all-settings",
                "outbox.relay.batch-size=200",
                "outbox.relay.batch-bytes=2MB",
                "outbox.relay.lease-duration=20s",
                "outbox.relay.idle-poll-interval=500ms",
                "outbox.relay.probe-interval=7ms",
                "outbox.relay.probe-interval-under-load=20ms",
                "outbox.relay.worker-threads=3",
                "outbox.relay.vacuum-after-rows=0",
                "outbox.relay.max-attempts=25",
                "outbox.relay.park-policy=hold-key",
                "outbox.relay.publish-mode=transactional",
                "outbox.relay.transactional-id-prefix=shop.",
                "outbox.relay.shutdown-timeout=5s",
                "outbox.relay.backoff-base=50ms",
                "outbox.relay.backoff-cap=2s",
                "outbox.relay.breaker-failure-threshold=7",
                "outbox.relay.breaker-open-duration=3s",
                "outbox.relay.producer.compression.type=zstd");
        assertThat(config.schema()).isEqualTo("shop_outbox");
        assertThat(config.instanceId()).isEqualTo("relay-all-settings");
        assertThat(config.batchSize()).isEqualTo(200);
        assertThat(config.batchBytes()).isEqualTo(2 << 20);
        assertThat(config.leaseDuration()).isEqualTo(Duration.ofSeconds(20));
        assertThat(config.idlePollInterval()).isEqualTo(Duration.ofMillis(500));
        assertThat(config.probeInterval()).isEqualTo(Duration.ofMillis(7));
        assertThat(config.probeIntervalUnderLoad()).isEqualTo(Duration.ofMillis(20));
        assertThat(config.workerThreads()).isEqualTo(3);
        assertThat(config.vacuumAfterRows()).isZero();
        assertThat(config.maxAttempts()).isEqualTo(25);
        assertThat(config.parkPolicy()).isEqualTo(ParkPolicy.HOLD_KEY);
        assertThat(config.publishMode()).isEqualTo(PublishMode.TRANSACTIONAL);
        assertThat(config.transactionalIdPrefix()).isEqualTo("shop.");
        assertThat(config.shutdownTimeout()).isEqualTo(Duration.ofSeconds(5));
        assertThat(config.backoff()).isEqualTo(Backoff.of(Duration.ofMillis(50), Duration.ofSeconds(2)));
        assertThat(config.circuitBreaker().getSlidingWindowSize()).isEqualTo(7);
        assertThat(config.circuitBreaker().getMinimumNumberOfCalls()).isEqualTo(7);
        assertThat(config.circuitBreaker().getWaitIntervalFunctionInOpenState().apply(1))
                .isEqualTo(3_000L);
        assertThat(config.producerProperties())
                .containsEntry("bootstrap.servers", "127.0.0.1:1")
                .containsEntry("compression.type", "zstd");
    }

    @Test
    void theBreakerAndBackoffDefaultsAreTheBuilders() {
        RelayConfig config = builtRelay("outbox.relay.instance-id=relay-defaults");
        assertThat(config.backoff()).isEqualTo(Relay.Builder.DEFAULT_BACKOFF);
        assertThat(config.circuitBreaker().getSlidingWindowSize())
                .isEqualTo(Relay.Builder.DEFAULT_BREAKER_FAILURE_THRESHOLD);
        assertThat(config.circuitBreaker().getWaitIntervalFunctionInOpenState().apply(1))
                .isEqualTo(Relay.Builder.DEFAULT_BREAKER_OPEN_DURATION.toMillis());
        assertThat(config.parkPolicy()).isEqualTo(Relay.Builder.DEFAULT_PARK_POLICY);
        assertThat(config.publishMode()).isEqualTo(Relay.Builder.DEFAULT_PUBLISH_MODE);
        assertThat(config.transactionalIdPrefix()).isNull();
        assertThat(config.shutdownTimeout()).isEqualTo(Relay.Builder.DEFAULT_SHUTDOWN_TIMEOUT);
        assertThat(config.maxAttempts()).isEqualTo(Relay.Builder.DEFAULT_MAX_ATTEMPTS);
    }

    @Test
    void anEmptyInstanceIdOrTransactionalIdPrefixMeansTheDefault() {
        // as ${POD_NAME:} gives when POD_NAME is not set
        RelayConfig config = builtRelay("outbox.relay.instance-id=", "outbox.relay.transactional-id-prefix=");
        assertThat(config.instanceId()).isNotBlank();
        assertThat(config.transactionalIdPrefix()).isNull();
    }

    @Test
    void aRefusedSettingNamesThePropertyAndTheValueGiven() {
        assertThat(refusal("outbox.relay.batch-size=0"))
                .startsWith("outbox.relay.batch-size=0: batchSize must be between 1 and 10000, got 0");
        assertThat(refusal("outbox.relay.max-attempts=0"))
                .startsWith("outbox.relay.max-attempts=0: maxAttempts must be between 1 and 1000, got 0");
        assertThat(refusal("outbox.relay.worker-threads=300"))
                .startsWith("outbox.relay.worker-threads=300: workerThreads must be between 1 and 256");
        assertThat(refusal("outbox.relay.vacuum-after-rows=-1"))
                .startsWith("outbox.relay.vacuum-after-rows=-1: vacuumAfterRows must be between 0 and 100000000");
        assertThat(refusal("outbox.relay.shutdown-timeout=11m"))
                .startsWith("outbox.relay.shutdown-timeout=11m: shutdownTimeout must be between 0s and 10m, got 11m");
        assertThat(refusal("outbox.relay.lease-duration=500ms"))
                .startsWith("outbox.relay.lease-duration=500ms: leaseDuration must be between 1s and 1h");
        assertThat(refusal("outbox.relay.idle-poll-interval=PT0.005S"))
                .startsWith("outbox.relay.idle-poll-interval=PT0.005S: idlePollInterval must be between 10ms and 1m");
        assertThat(refusal("outbox.relay.instance-id=" + "r".repeat(201)))
                .startsWith("outbox.relay.instance-id=" + "r".repeat(201) + ": instanceId must be 1 to 200");
        assertThat(refusal(
                        "outbox.relay.publish-mode=transactional",
                        "outbox.relay.transactional-id-prefix=" + "x".repeat(201)))
                .startsWith("outbox.relay.transactional-id-prefix=" + "x".repeat(201)
                        + ": transactionalIdPrefix must be 1 to 200");
        assertThat(refusal("outbox.relay.backoff-base=0ms"))
                .startsWith("outbox.relay.backoff-base=0ms: backoffBase must be between 1ms and 1m, got 0s");
        assertThat(refusal("outbox.relay.backoff-cap=11m"))
                .startsWith("outbox.relay.backoff-cap=11m: backoffCap must be between 1ms and 10m, got 11m");
        assertThat(refusal("outbox.relay.backoff-base=1s", "outbox.relay.backoff-cap=500ms"))
                .startsWith("outbox.relay.backoff-cap=500ms (with outbox.relay.backoff-base=1s): backoff cap (500ms)"
                        + " must be at least base (1s)");
        assertThat(refusal("outbox.relay.breaker-failure-threshold=0"))
                .startsWith("outbox.relay.breaker-failure-threshold=0: breakerFailureThreshold must be between 1"
                        + " and 1000, got 0");
        assertThat(refusal("outbox.relay.breaker-open-duration=50ms"))
                .startsWith("outbox.relay.breaker-open-duration=50ms: breakerOpenDuration must be between 100ms"
                        + " and 1h, got 50ms");
    }

    @Test
    void twoSettingsThatConflictAreNamedByTheirProperties() {
        assertThat(refusal("outbox.relay.idle-poll-interval=40s"))
                .startsWith("outbox.relay.idle-poll-interval=40s may not exceed outbox.relay.lease-duration=30s");
        assertThat(refusal("outbox.relay.transactional-id-prefix=shop."))
                .startsWith("outbox.relay.transactional-id-prefix=shop. is only used with"
                        + " outbox.relay.publish-mode=transactional");
    }

    @Test
    void batchBytesBeyondTheIntRangeAreRefusedNotClamped() {
        assertThat(refusal("outbox.relay.batch-bytes=3GB"))
                .startsWith("outbox.relay.batch-bytes=3GB: batchBytes must be between 1024 and 1073741824, got"
                        + " 3221225472")
                .doesNotContain(String.valueOf(Integer.MAX_VALUE));
        assertThat(refusal("outbox.relay.batch-bytes=1536MB"))
                .startsWith("outbox.relay.batch-bytes=1536MB: batchBytes must be between 1024 and 1073741824, got"
                        + " 1610612736");
    }

    @Test
    void producerPropertiesAreCheckedAsTheRelayProcessChecksThem() {
        assertThat(refusal("outbox.relay.producer.linger=5"))
                .startsWith("outbox.relay.producer.linger=5: unknown Kafka producer property linger")
                .contains("did you mean linger.ms?");
        assertThat(refusal("outbox.relay.producer.group.id=orders"))
                .startsWith("outbox.relay.producer.group.id=orders: unknown Kafka producer property group.id");
        assertThat(refusal("outbox.relay.producer.bootstrap.servers=kafka:9092"))
                .startsWith("outbox.relay.producer.bootstrap.servers=kafka:9092:")
                .contains("outbox.relay.bootstrap-servers");
        assertThat(refusal("outbox.relay.producer.ssl.keystore.pasword=s3cret"))
                .startsWith("outbox.relay.producer.ssl.keystore.pasword=[hidden]: unknown Kafka producer property")
                .contains("did you mean ssl.keystore.password?")
                .doesNotContain("s3cret");
        assertThat(refusal("outbox.relay.producer.linger.ms=soon"))
                .startsWith("outbox.relay.producer.linger.ms=soon: Invalid value soon for configuration linger.ms");
        // what the builder itself refuses stays refused
        assertThat(refusal("outbox.relay.producer.acks=1"))
                .startsWith("outbox.relay.producer.acks=1: producer property acks must be all");
        assertThat(refusal("outbox.relay.producer.enable.idempotence=false"))
                .startsWith("outbox.relay.producer.enable.idempotence=false: producer property enable.idempotence"
                        + " must be true");
        assertThat(refusal("outbox.relay.producer.transactional.id=shop"))
                .startsWith("outbox.relay.producer.transactional.id=shop: producer property transactional.id is not"
                        + " supported");
        assertThat(refusal("outbox.relay.producer.delivery.timeout.ms=60000"))
                .startsWith("outbox.relay.producer.delivery.timeout.ms=60000: producer property delivery.timeout.ms"
                        + " (60000) may not exceed");
    }

    @Test
    void springKafkaBootstrapServersMayBeAList() {
        RelayConfig config = builtRelay(
                runner,
                "outbox.relay.enabled=true",
                "outbox.relay.instance-id=relay-list",
                "spring.kafka.bootstrap-servers[0]=h1:9092",
                "spring.kafka.bootstrap-servers[1]=h2:9092");
        assertThat(config.producerProperties()).containsEntry("bootstrap.servers", "h1:9092,h2:9092");
        config = builtRelay(
                runner,
                "outbox.relay.enabled=true",
                "outbox.relay.instance-id=relay-text",
                "spring.kafka.bootstrap-servers=h1:9092,h2:9092");
        assertThat(config.producerProperties()).containsEntry("bootstrap.servers", "h1:9092,h2:9092");
        config = builtRelay(
                runner,
                "outbox.relay.enabled=true",
                "outbox.relay.instance-id=relay-own",
                "outbox.relay.bootstrap-servers=k1:9092",
                "spring.kafka.bootstrap-servers=h1:9092");
        assertThat(config.producerProperties()).containsEntry("bootstrap.servers", "k1:9092");
    }

    /**
     * A service that reaches a TLS/SASL cluster through {@code spring.kafka.*} gets a relay that
     * connects the same way: the producer's connection-security settings of Spring Boot's {@code
     * KafkaProperties} bean ({@code security.protocol}, {@code ssl.*} from {@code spring.kafka.ssl.*}
     * with the trust store as a file path, {@code sasl.*} from {@code spring.kafka.properties.*})
     * reach the relay's producer, and none of Spring's producer behaviour does (acks, retries,
     * idempotence, batching, compression, serializers, client id): the relay refuses several of those,
     * so taking one would fail the start. Fails if the relay took only the bootstrap servers (it then
     * connected in plaintext and never published) or took a behaviour setting.
     */
    @Test
    void theRelayTakesTheConnectionSecurityOfSpringKafka() {
        RelayConfig config = builtRelay(
                runner.withConfiguration(AutoConfigurations.of(KafkaAutoConfiguration.class)),
                "outbox.relay.enabled=true",
                "outbox.relay.instance-id=relay-tls",
                "spring.kafka.bootstrap-servers=k1:9093",
                "spring.kafka.security.protocol=SASL_SSL",
                "spring.kafka.ssl.trust-store-location=file:/etc/kafka/truststore.p12",
                "spring.kafka.ssl.trust-store-password=changeit",
                "spring.kafka.ssl.trust-store-type=PKCS12",
                "spring.kafka.properties.sasl.mechanism=SCRAM-SHA-512",
                "spring.kafka.properties.sasl.jaas.config=" + SCRAM_LOGIN,
                "spring.kafka.producer.properties.ssl.endpoint.identification.algorithm=https",
                "spring.kafka.client-id=shop",
                "spring.kafka.producer.acks=1",
                "spring.kafka.producer.retries=0",
                "spring.kafka.producer.batch-size=1KB",
                "spring.kafka.producer.compression-type=gzip",
                "spring.kafka.producer.key-serializer=org.apache.kafka.common.serialization.StringSerializer",
                "spring.kafka.properties.linger.ms=50",
                "spring.kafka.properties.enable.idempotence=false");
        assertThat(config.producerProperties())
                .containsEntry("bootstrap.servers", "k1:9093")
                .containsEntry("security.protocol", "SASL_SSL")
                .containsEntry("ssl.truststore.location", "/etc/kafka/truststore.p12")
                .containsEntry("ssl.truststore.password", "changeit")
                .containsEntry("ssl.truststore.type", "PKCS12")
                .containsEntry("ssl.endpoint.identification.algorithm", "https")
                .containsEntry("sasl.mechanism", "SCRAM-SHA-512")
                .containsEntry("sasl.jaas.config", SCRAM_LOGIN)
                .containsEntry("acks", "all")
                .containsEntry("enable.idempotence", "true")
                .containsEntry("linger.ms", "0")
                .containsEntry("batch.size", "65536")
                .containsEntry("key.serializer", "org.apache.kafka.common.serialization.ByteArraySerializer")
                .containsEntry("client.id", "outbox-relay-relay-tls")
                .doesNotContainKeys("retries", "compression.type");
    }

    /**
     * What {@code outbox.relay.producer.*} sets wins, by family: {@code security.protocol} alone, and
     * the {@code ssl.*} or {@code sasl.*} settings as a whole, so that one SASL login is never made
     * of two configurations' parts; the families it leaves out are taken from {@code spring.kafka.*},
     * here bound from the environment, as without Spring Boot's Kafka auto-configuration. Fails if
     * spring.kafka's value replaced the relay's own, or its SASL login was mixed into the relay's.
     */
    @Test
    void anOutboxRelayProducerSettingWinsOverSpringKafka() {
        RelayConfig config = builtRelay(
                runner,
                "outbox.relay.enabled=true",
                "outbox.relay.instance-id=relay-own-sasl",
                "spring.kafka.bootstrap-servers=k1:9093",
                "spring.kafka.security.protocol=SSL",
                "spring.kafka.ssl.trust-store-location=file:/etc/kafka/truststore.p12",
                "spring.kafka.properties.sasl.mechanism=PLAIN",
                "spring.kafka.properties.sasl.jaas.config=" + PLAIN_LOGIN,
                "outbox.relay.producer.security.protocol=SASL_SSL",
                "outbox.relay.producer.sasl.mechanism=SCRAM-SHA-512",
                "outbox.relay.producer.sasl.jaas.config=" + SCRAM_LOGIN);
        assertThat(config.producerProperties())
                .containsEntry("security.protocol", "SASL_SSL")
                .containsEntry("sasl.mechanism", "SCRAM-SHA-512")
                .containsEntry("sasl.jaas.config", SCRAM_LOGIN)
                .containsEntry("ssl.truststore.location", "/etc/kafka/truststore.p12");
        config = builtRelay(
                runner,
                "outbox.relay.enabled=true",
                "outbox.relay.instance-id=relay-own-mechanism",
                "spring.kafka.bootstrap-servers=k1:9093",
                "spring.kafka.properties.sasl.mechanism=PLAIN",
                "spring.kafka.properties.sasl.jaas.config=" + PLAIN_LOGIN,
                "outbox.relay.producer.sasl.mechanism=OAUTHBEARER");
        assertThat(config.producerProperties())
                .containsEntry("sasl.mechanism", "OAUTHBEARER")
                .doesNotContainKey("sasl.jaas.config");
    }

    /**
     * The connection security of {@code spring.kafka.*} belongs to its brokers: a relay given other
     * brokers in {@code outbox.relay.bootstrap-servers} takes none of it, one given the same brokers
     * takes it. Fails if a relay publishing to another cluster took spring.kafka's TLS or login.
     */
    @Test
    void aRelayOnOtherBrokersTakesNoConnectionSettingsFromSpringKafka() {
        String[] springKafka = {
            "outbox.relay.enabled=true",
            "spring.kafka.bootstrap-servers=k1:9093,k2:9093",
            "spring.kafka.security.protocol=SASL_SSL",
            "spring.kafka.properties.sasl.mechanism=PLAIN"
        };
        RelayConfig other = builtRelay(
                runner.withPropertyValues(springKafka),
                "outbox.relay.instance-id=relay-other",
                "outbox.relay.bootstrap-servers=other:9092");
        assertThat(other.producerProperties()).doesNotContainKeys("security.protocol", "sasl.mechanism");
        RelayConfig same = builtRelay(
                runner.withPropertyValues(springKafka),
                "outbox.relay.instance-id=relay-same",
                "outbox.relay.bootstrap-servers=k2:9093, k1:9093");
        assertThat(same.producerProperties())
                .containsEntry("security.protocol", "SASL_SSL")
                .containsEntry("sasl.mechanism", "PLAIN");
    }

    /**
     * Without {@code spring-boot-kafka} on the class path (the starter's dependency on it is
     * optional) the relay starts as before, on {@code spring.kafka.bootstrap-servers} alone.
     */
    @Test
    void withoutSpringBootKafkaOnTheClassPathOnlyTheBrokersAreRead() {
        RelayConfig config = builtRelay(
                runner.withClassLoader(new FilteredClassLoader(KafkaProperties.class)),
                "outbox.relay.enabled=true",
                "outbox.relay.instance-id=relay-no-boot-kafka",
                "spring.kafka.bootstrap-servers=k1:9093",
                "spring.kafka.security.protocol=SSL");
        assertThat(config.producerProperties())
                .containsEntry("bootstrap.servers", "k1:9093")
                .doesNotContainKey("security.protocol");
    }

    /** A value taken from spring.kafka.* that Kafka refuses fails the start, naming where it came from. */
    @Test
    void aTakenValueKafkaRefusesNamesWhereItCameFrom() {
        assertThat(refusal("spring.kafka.bootstrap-servers=127.0.0.1:1", "spring.kafka.security.protocol=TLS"))
                .startsWith("security.protocol=TLS, taken from spring.kafka.* by the embedded relay: Invalid value TLS")
                .endsWith("fix it there, or set outbox.relay.producer.security.protocol");
    }

    /**
     * An SSL bundle cannot be handed to the relay's Kafka clients as a setting: the start fails,
     * naming the bundle and the {@code outbox.relay.producer.ssl.*} properties that give the relay
     * the same key and trust material; once they are set, it starts. Fails if the relay started
     * without the cluster's TLS material.
     */
    @Test
    void anSslBundleOfSpringKafkaFailsTheStartNamingTheRelaysSettings() {
        assertThat(refusal(
                        "spring.kafka.bootstrap-servers=127.0.0.1:1",
                        "spring.kafka.security.protocol=SSL",
                        "spring.kafka.ssl.bundle=kafka-tls"))
                .startsWith("spring.kafka.ssl.bundle=kafka-tls: ")
                .contains("outbox.relay.producer.ssl.truststore.location")
                .contains("outbox.relay.producer.ssl.truststore.certificates")
                .contains("outbox.relay.producer.ssl.keystore.location");
        RelayConfig config = builtRelay(
                runner,
                "outbox.relay.enabled=true",
                "outbox.relay.instance-id=relay-bundle",
                "spring.kafka.bootstrap-servers=k1:9093",
                "spring.kafka.security.protocol=SSL",
                "spring.kafka.producer.ssl.bundle=kafka-tls",
                "outbox.relay.producer.ssl.truststore.location=/etc/kafka/truststore.p12");
        assertThat(config.producerProperties())
                .containsEntry("security.protocol", "SSL")
                .containsEntry("ssl.truststore.location", "/etc/kafka/truststore.p12");
    }

    /**
     * A service connection ({@code @ServiceConnection} with Testcontainers) gives Spring's producer its
     * brokers in a {@code KafkaConnectionDetails} bean, not in {@code spring.kafka.bootstrap-servers}:
     * the relay publishes to the bean's producer bootstrap servers, joined with commas, over
     * spring.kafka's, and, as it then publishes to the brokers of Spring's producer, takes that
     * producer's connection security: the bean's security protocol over spring.kafka's, spring.kafka's
     * {@code sasl.*}, and {@code outbox.relay.producer.security.protocol} over both. Fails if the relay
     * published to spring.kafka.bootstrap-servers (before, it did) or ignored the bean's protocol.
     */
    @Test
    void aServiceConnectionGivesTheRelayItsBrokersOverSpringKafka() {
        ApplicationContextRunner withDetails = runner.withConfiguration(
                        AutoConfigurations.of(KafkaAutoConfiguration.class))
                .withBean(
                        "kafkaServiceConnection",
                        KafkaConnectionDetails.class,
                        () -> new ServiceConnectionDetails(
                                List.of("details-host:9092", " details-host2:9092"), "SASL_SSL", null));
        String[] springKafka = {
            "outbox.relay.enabled=true",
            "spring.kafka.bootstrap-servers=properties-host:9092",
            "spring.kafka.security.protocol=SASL_PLAINTEXT",
            "spring.kafka.properties.sasl.mechanism=PLAIN"
        };
        RelayConfig config = builtRelay(
                withDetails.withPropertyValues(springKafka), "outbox.relay.instance-id=relay-service-connection");
        assertThat(config.producerProperties())
                .containsEntry("bootstrap.servers", "details-host:9092,details-host2:9092")
                .containsEntry("security.protocol", "SASL_SSL")
                .containsEntry("sasl.mechanism", "PLAIN");
        config = builtRelay(
                withDetails.withPropertyValues(springKafka),
                "outbox.relay.instance-id=relay-service-connection-own-protocol",
                "outbox.relay.producer.security.protocol=SSL");
        assertThat(config.producerProperties())
                .containsEntry("bootstrap.servers", "details-host:9092,details-host2:9092")
                .containsEntry("security.protocol", "SSL");
    }

    /**
     * {@code outbox.relay.bootstrap-servers} still wins over a service connection, and the connection
     * security then follows the brokers the relay actually uses: other brokers take none of it, the
     * service connection's own brokers take its security protocol. Fails if the bean's brokers
     * replaced the relay's own setting, or (as before) the bean's protocol was never taken.
     */
    @Test
    void outboxRelayBootstrapServersWinOverAServiceConnection() {
        ApplicationContextRunner withDetails = runner.withPropertyValues(
                        "outbox.relay.enabled=true", "spring.kafka.bootstrap-servers=properties-host:9092")
                .withBean(
                        "kafkaServiceConnection",
                        KafkaConnectionDetails.class,
                        () -> new ServiceConnectionDetails(List.of("details-host:9092"), "SSL", null));
        RelayConfig other = builtRelay(
                withDetails,
                "outbox.relay.instance-id=relay-own-brokers",
                "outbox.relay.bootstrap-servers=own-host:9092");
        assertThat(other.producerProperties())
                .containsEntry("bootstrap.servers", "own-host:9092")
                .doesNotContainKey("security.protocol");
        RelayConfig same = builtRelay(
                withDetails,
                "outbox.relay.instance-id=relay-details-brokers",
                "outbox.relay.bootstrap-servers=details-host:9092");
        assertThat(same.producerProperties())
                .containsEntry("bootstrap.servers", "details-host:9092")
                .containsEntry("security.protocol", "SSL");
    }

    /**
     * Without a service connection, Spring Boot's own {@code KafkaConnectionDetails}, built from
     * {@code spring.kafka.*}, changes nothing: the relay publishes to {@code
     * spring.kafka.bootstrap-servers}, and with it unset the start still fails, now also naming the
     * service connection, instead of the relay publishing to that bean's default {@code
     * localhost:9092}. Fails if the message does not say that a connection details bean is read.
     */
    @Test
    void springBootsOwnConnectionDetailsLeaveTheBrokersToSpringKafka() {
        ApplicationContextRunner kafka = runner.withConfiguration(AutoConfigurations.of(KafkaAutoConfiguration.class));
        RelayConfig config = builtRelay(
                kafka,
                "outbox.relay.enabled=true",
                "outbox.relay.instance-id=relay-properties-details",
                "spring.kafka.bootstrap-servers=k1:9092,k2:9092",
                "spring.kafka.security.protocol=SSL");
        assertThat(config.producerProperties())
                .containsEntry("bootstrap.servers", "k1:9092,k2:9092")
                .containsEntry("security.protocol", "SSL");
        kafka.withPropertyValues("outbox.relay.enabled=true").run(context -> {
            assertThat(context).hasFailed();
            assertThat(context.getStartupFailure())
                    .rootCause()
                    .hasMessageContaining(
                            "none of outbox.relay.bootstrap-servers, spring.kafka.producer.bootstrap-servers"
                                    + " and spring.kafka.bootstrap-servers is set")
                    .hasMessageContaining("no KafkaConnectionDetails bean");
        });
    }

    /**
     * Spring's producer publishes to {@code spring.kafka.producer.bootstrap-servers} over {@code
     * spring.kafka.bootstrap-servers}, and so does the relay, taking that producer's connection
     * security with it. Before, it published to {@code spring.kafka.bootstrap-servers}, other brokers
     * than Spring's producer, and took none of its TLS or SASL settings.
     */
    @Test
    void theRelayPublishesToTheBrokersOfSpringsProducer() {
        RelayConfig config = builtRelay(
                runner.withConfiguration(AutoConfigurations.of(KafkaAutoConfiguration.class)),
                "outbox.relay.enabled=true",
                "outbox.relay.instance-id=relay-producer-brokers",
                "spring.kafka.bootstrap-servers=common:9092",
                "spring.kafka.producer.bootstrap-servers=producer:9093",
                "spring.kafka.security.protocol=SSL");
        assertThat(config.producerProperties())
                .containsEntry("bootstrap.servers", "producer:9093")
                .containsEntry("security.protocol", "SSL");
    }

    /**
     * A service connection whose producer uses an SSL bundle fails the start as a {@code
     * spring.kafka.ssl.bundle} does, naming the bean and the {@code outbox.relay.producer.ssl.*}
     * properties; once they are set, the relay starts with the bean's brokers and security protocol.
     * Fails if the relay started on the bean's brokers without their TLS material.
     */
    @Test
    void aServiceConnectionsSslBundleFailsTheStartNamingTheRelaysSettings() {
        ApplicationContextRunner withBundle = runner.withPropertyValues("outbox.relay.enabled=true")
                .withBean(
                        "kafkaServiceConnection",
                        KafkaConnectionDetails.class,
                        () -> new ServiceConnectionDetails(
                                List.of("127.0.0.1:1"), "SSL", SslBundle.of(SslStoreBundle.NONE)));
        assertThat(refusal(withBundle))
                .startsWith("KafkaConnectionDetails bean 'kafkaServiceConnection' ("
                        + ServiceConnectionDetails.class.getName() + ") gives Spring's producer an SSL bundle: ")
                .contains("outbox.relay.producer.ssl.truststore.location")
                .contains("outbox.relay.producer.ssl.truststore.certificates")
                .contains("outbox.relay.producer.ssl.keystore.location");
        RelayConfig config = builtRelay(
                withBundle,
                "outbox.relay.instance-id=relay-details-bundle",
                "outbox.relay.producer.ssl.truststore.location=/etc/kafka/truststore.p12");
        assertThat(config.producerProperties())
                .containsEntry("bootstrap.servers", "127.0.0.1:1")
                .containsEntry("security.protocol", "SSL")
                .containsEntry("ssl.truststore.location", "/etc/kafka/truststore.p12");
    }

    /**
     * Two service connections and none primary: the relay cannot tell which brokers Spring's producer
     * uses, and says so instead of picking one or falling back to spring.kafka.*; with one primary,
     * it publishes to that one's brokers.
     */
    @Test
    void twoServiceConnectionsNeedAPrimaryOne() {
        ApplicationContextRunner two = runner.withPropertyValues(
                        "outbox.relay.enabled=true", "spring.kafka.bootstrap-servers=properties-host:9092")
                .withBean(
                        "orders",
                        KafkaConnectionDetails.class,
                        () -> new ServiceConnectionDetails(List.of("orders-host:9092"), null, null))
                .withBean(
                        "audit",
                        KafkaConnectionDetails.class,
                        () -> new ServiceConnectionDetails(List.of("audit-host:9092"), null, null));
        assertThat(refusal(two))
                .startsWith("the application has 2 KafkaConnectionDetails beans")
                .contains("orders", "audit", "none named connectionDetails")
                .endsWith("mark one @Primary");
        RelayConfig config = builtRelay(
                runner.withBean(
                                "orders",
                                KafkaConnectionDetails.class,
                                () -> new ServiceConnectionDetails(List.of("orders-host:9092"), null, null),
                                definition -> definition.setPrimary(true))
                        .withBean(
                                "audit",
                                KafkaConnectionDetails.class,
                                () -> new ServiceConnectionDetails(List.of("audit-host:9092"), null, null)),
                "outbox.relay.enabled=true",
                "outbox.relay.instance-id=relay-primary-details");
        assertThat(config.producerProperties()).containsEntry("bootstrap.servers", "orders-host:9092");
        // the other, lazy, bean declared first: looking through the candidates in order created it
        RelayConfig lazy = builtRelay(
                runner.withBean(
                                "audit",
                                KafkaConnectionDetails.class,
                                () -> {
                                    throw new IllegalStateException("the lazy second connection was created");
                                },
                                definition -> definition.setLazyInit(true))
                        .withBean(
                                "orders",
                                KafkaConnectionDetails.class,
                                () -> new ServiceConnectionDetails(List.of("orders-host:9092"), null, null),
                                definition -> definition.setPrimary(true)),
                "outbox.relay.enabled=true",
                "outbox.relay.instance-id=relay-lazy-details");
        assertThat(lazy.producerProperties())
                .as("only the chosen bean is created, not every candidate")
                .containsEntry("bootstrap.servers", "orders-host:9092");
    }

    /**
     * Of several service connections, none primary, Spring's producer takes the one named {@code
     * connectionDetails}, its producer factory's parameter, and so does the relay. Before, the relay
     * failed the start while Spring's producer started on that bean's brokers. Proven against the
     * producer factory Spring Boot builds in the same context.
     */
    @Test
    void ofSeveralServiceConnectionsTheRelayTakesTheOneSpringsProducerTakes() {
        Map<String, String> relay = new TreeMap<>();
        Map<String, String> spring = new TreeMap<>();
        relayAndSpringsProducer(
                runner.withConfiguration(AutoConfigurations.of(KafkaAutoConfiguration.class))
                        .withBean(
                                "audit",
                                KafkaConnectionDetails.class,
                                () -> new ServiceConnectionDetails(List.of("audit-host:9092"), null, null))
                        .withBean(
                                "connectionDetails",
                                KafkaConnectionDetails.class,
                                () -> new ServiceConnectionDetails(List.of("orders-host:9092"), "SSL", null)),
                relay,
                spring,
                "outbox.relay.enabled=true",
                "outbox.relay.instance-id=relay-named-details");
        assertThat(spring)
                .containsEntry("bootstrap.servers", "orders-host:9092")
                .containsEntry("security.protocol", "SSL");
        assertThat(relay).isEqualTo(spring);
    }

    /**
     * Without a service connection, {@code spring.kafka.producer.security.protocol}, else {@code
     * spring.kafka.security.protocol}, wins over a {@code security.protocol} in {@code
     * spring.kafka.properties.*} for Spring's producer, and now for the relay too. Before, the relay
     * took the {@code spring.kafka.properties.*} one and spoke another protocol than Spring's
     * producer to the same brokers. Proven against the producer factory Spring Boot builds.
     */
    @Test
    void theRelaysSecurityProtocolIsTheOneOfSpringsProducer() {
        ApplicationContextRunner kafka = runner.withConfiguration(AutoConfigurations.of(KafkaAutoConfiguration.class));
        String[][] cases = {
            {"spring.kafka.security.protocol=SSL", "spring.kafka.properties.security.protocol=SASL_SSL"},
            {"spring.kafka.producer.security.protocol=SSL", "spring.kafka.security.protocol=SASL_PLAINTEXT"},
            {"spring.kafka.properties.security.protocol=SASL_SSL"},
        };
        for (String[] settings : cases) {
            Map<String, String> relay = new TreeMap<>();
            Map<String, String> spring = new TreeMap<>();
            List<String> properties = new ArrayList<>(List.of(
                    "outbox.relay.enabled=true",
                    "outbox.relay.instance-id=relay-protocol",
                    "spring.kafka.bootstrap-servers=k1:9092"));
            properties.addAll(List.of(settings));
            relayAndSpringsProducer(kafka, relay, spring, properties.toArray(String[]::new));
            assertThat(spring)
                    .as("Spring's producer with %s", List.of(settings))
                    .containsKey("security.protocol");
            assertThat(relay).as("the relay with %s", List.of(settings)).isEqualTo(spring);
        }
    }

    /**
     * A bean factory that cannot resolve beans as Spring injects them still yields the service
     * connection. Before, it was ignored without a word and the relay published to {@code
     * spring.kafka.*}'s brokers.
     */
    @Test
    void aServiceConnectionIsReadFromAnyBeanFactory() {
        StaticListableBeanFactory beans = new StaticListableBeanFactory();
        beans.addBean("orders", new ServiceConnectionDetails(List.of("orders-host:9092"), "SSL", null));
        SpringKafkaConnection connection = SpringKafkaConnection.read(
                beans, new MockEnvironment().withProperty("spring.kafka.bootstrap-servers", "properties-host:9092"));
        assertThat(connection.brokers()).containsExactly("orders-host:9092");
        assertThat(connection.security()).containsEntry("security.protocol", "SSL");
        assertThat(connection.connectionDetails()).startsWith("KafkaConnectionDetails bean 'orders'");
    }

    /**
     * Starts the context and collects the bootstrap servers and security protocol of the relay's
     * producer and of the producer factory Spring Boot builds.
     */
    private static void relayAndSpringsProducer(
            ApplicationContextRunner runner,
            Map<String, String> relay,
            Map<String, String> spring,
            String... properties) {
        Map<Class<?>, Object> built = new ConcurrentHashMap<>();
        // captured as they are built: the relay's start fails later, with no database to reach
        capturing(runner.withPropertyValues(properties), built, Relay.class, DefaultKafkaProducerFactory.class)
                .run(context -> {});
        assertThat(built)
                .as("the relay and Spring's producer factory were built")
                .hasSize(2);
        Map<String, Object> producer = ((DefaultKafkaProducerFactory<?, ?>)
                        built.get(DefaultKafkaProducerFactory.class))
                .getConfigurationProperties();
        RelayConfig config = configOf(built.get(Relay.class));
        for (String name : List.of("bootstrap.servers", "security.protocol")) {
            Object value = producer.get(name);
            if (value != null) {
                spring.put(
                        name,
                        value instanceof List<?> list
                                ? list.stream().map(String::valueOf).collect(Collectors.joining(","))
                                : String.valueOf(value));
            }
            Object own = config.producerProperties().get(name);
            if (own != null) {
                relay.put(name, String.valueOf(own));
            }
        }
    }

    /** The connection details a service connection registers: brokers, and a security protocol or SSL bundle. */
    record ServiceConnectionDetails(List<String> servers, String protocol, SslBundle bundle)
            implements KafkaConnectionDetails {
        @Override
        public List<String> getBootstrapServers() {
            return servers;
        }

        @Override
        public String getSecurityProtocol() {
            return protocol;
        }

        @Override
        public SslBundle getSslBundle() {
            return bundle;
        }
    }

    /**
     * @return the configuration of the relay the starter built from these settings (with the relay
     *     enabled and Kafka given); the context then fails to start it, as nothing answers at the data
     *     source
     */
    private RelayConfig builtRelay(String... properties) {
        return builtRelay(
                runner.withPropertyValues("outbox.relay.enabled=true", "outbox.relay.bootstrap-servers=127.0.0.1:1"),
                properties);
    }

    private static RelayConfig builtRelay(ApplicationContextRunner runner, String... properties) {
        Map<Class<?>, Object> built = new ConcurrentHashMap<>();
        capturing(runner.withPropertyValues(properties), built, Relay.class).run(context -> {
            if (context.getStartupFailure() != null) {
                assertThat(built)
                        .as("the relay was built; the start failed with %s", context.getStartupFailure())
                        .containsKey(Relay.class);
            }
        });
        assertThat(built).as("the relay was built").containsKey(Relay.class);
        return configOf(built.get(Relay.class));
    }

    /** @return the settings of the relay the starter's {@link RestartableRelay} runs now */
    private static RelayConfig configOf(Object relay) {
        return (RelayConfig) ReflectionTestUtils.getField(((RestartableRelay) relay).current(), "config");
    }

    /** @return {@code runner} keeping in {@code built} the last bean built of each of {@code types} */
    private static ApplicationContextRunner capturing(
            ApplicationContextRunner runner, Map<Class<?>, Object> built, Class<?>... types) {
        return runner.withBean("relayCapture", BeanPostProcessor.class, () -> new BeanPostProcessor() {
            @Override
            public Object postProcessAfterInitialization(Object bean, String name) {
                for (Class<?> type : types) {
                    if (type.isInstance(bean)) {
                        built.put(type, bean);
                    }
                }
                return bean;
            }
        });
    }

    /** @return the message of the failure that stopped the start with the relay enabled, Kafka given, and these settings */
    private String refusal(String... properties) {
        return refusal(
                runner.withPropertyValues("outbox.relay.enabled=true", "outbox.relay.bootstrap-servers=127.0.0.1:1")
                        .withPropertyValues(properties));
    }

    /** @return the message of the root cause of the failure that stopped the start of {@code runner}'s context */
    private static String refusal(ApplicationContextRunner runner) {
        AtomicReference<Throwable> failure = new AtomicReference<>();
        runner.run(context -> {
            assertThat(context).hasFailed();
            failure.set(context.getStartupFailure());
        });
        Throwable root = failure.get();
        while (root.getCause() != null) {
            root = root.getCause();
        }
        return root.getMessage();
    }

    @Test
    void theEmbeddedRelayTakesItsProbeAndBatchSettings() {
        // the builder refuses what is out of range, so a refusal shows the setting reached it
        assertThat(refusal("outbox.relay.probe-interval-under-load=2s"))
                .startsWith("outbox.relay.probe-interval-under-load=2s: probeIntervalUnderLoad must be between 1ms and"
                        + " 1s, got 2s");
        assertThat(refusal("outbox.relay.probe-interval=0ms"))
                .startsWith("outbox.relay.probe-interval=0ms: probeInterval must be between 1ms and 1s, got 0s");
        assertThat(refusal("outbox.relay.batch-bytes=2GB"))
                .startsWith("outbox.relay.batch-bytes=2GB: batchBytes must be between 1024 and 1073741824, got"
                        + " 2147483648");
        assertThat(refusal("outbox.relay.batch-bytes=512B"))
                .startsWith("outbox.relay.batch-bytes=512B: batchBytes must be between 1024 and 1073741824, got 512");
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
                        "\"outbox.relay.max-attempts\"",
                        "\"outbox.relay.park-policy\"",
                        "\"outbox.relay.publish-mode\"",
                        "\"outbox.relay.transactional-id-prefix\"",
                        "\"outbox.relay.shutdown-timeout\"",
                        "\"outbox.relay.backoff-base\"",
                        "\"outbox.relay.backoff-cap\"",
                        "\"outbox.relay.breaker-failure-threshold\"",
                        "\"outbox.relay.breaker-open-duration\"",
                        "\"outbox.schema\"",
                        "\"outbox.notify-in-transaction\"",
                        "\"outbox.idempotency.hold-timeout\"",
                        "\"outbox.idempotency.purge-interval\"",
                        "\"outbox.idempotency.purge-batch-size\"",
                        "\"outbox.idempotency.stored-headers\"",
                        "\"outbox.idempotency.name\"",
                        "\"outbox.idempotency.application\"",
                        "\"outbox.processed.retention\"",
                        "\"outbox.processed.purge-interval\"",
                        "\"defaultValue\": 64",
                        "\"defaultValue\": \"park-and-continue\"");
    }
}
