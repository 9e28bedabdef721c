package dev.outbox.spring;

import dev.outbox.consumer.IdempotentConsumer;
import dev.outbox.consumer.ProcessedMessages;
import dev.outbox.core.Outbox;
import dev.outbox.http.server.IdempotencyFilter;
import dev.outbox.http.server.IdempotencyStore;
import dev.outbox.http.server.RequestFingerprint;
import dev.outbox.http.server.ResponsePolicy;
import dev.outbox.http.server.ScopeResolver;
import dev.outbox.migrations.OutboxMigrations;
import dev.outbox.migrations.internal.JooqVersionCheck;
import dev.outbox.relay.Relay;
import dev.outbox.schemas.AvroCodec;
import dev.outbox.spring.internal.ConditionalOnEnabled;
import dev.outbox.spring.internal.ConsumersHealthIndicator;
import dev.outbox.spring.internal.EmbeddedRelay;
import dev.outbox.spring.internal.EmbeddedRelayBuilder;
import dev.outbox.spring.internal.IdempotencyPathsCondition;
import dev.outbox.spring.internal.InstalledShards;
import dev.outbox.spring.internal.ListenerRetries;
import dev.outbox.spring.internal.NamedSettings;
import dev.outbox.spring.internal.OutboxMigrationsInitializer;
import dev.outbox.spring.internal.OutboxPurges;
import dev.outbox.spring.internal.PersistenceContexts;
import dev.outbox.spring.internal.RelayHealthIndicator;
import dev.outbox.spring.internal.RestartableRelay;
import dev.outbox.spring.internal.SpringKafkaConnection;
import dev.outbox.spring.internal.SpringMvcGate;
import dev.outbox.spring.internal.SpringTransactionProvider;
import dev.outbox.spring.internal.TransactionManagers;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Metrics;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import javax.sql.DataSource;
import org.jooq.DSLContext;
import org.jooq.SQLDialect;
import org.jooq.impl.DSL;
import org.jooq.impl.DataSourceConnectionProvider;
import org.jooq.impl.DefaultConfiguration;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.ListableBeanFactory;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.beans.factory.SmartInitializingSingleton;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionalOnBean;
import org.springframework.boot.autoconfigure.condition.ConditionalOnClass;
import org.springframework.boot.autoconfigure.condition.ConditionalOnMissingBean;
import org.springframework.boot.autoconfigure.condition.ConditionalOnMissingClass;
import org.springframework.boot.autoconfigure.condition.ConditionalOnSingleCandidate;
import org.springframework.boot.autoconfigure.condition.ConditionalOnWebApplication;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.boot.health.contributor.HealthIndicator;
import org.springframework.boot.web.context.reactive.ReactiveWebApplicationContext;
import org.springframework.boot.web.servlet.FilterRegistrationBean;
import org.springframework.context.ApplicationContext;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Conditional;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.ResolvableType;
import org.springframework.core.env.Environment;
import org.springframework.core.io.ResourceLoader;
import org.springframework.jdbc.datasource.TransactionAwareDataSourceProxy;
import org.springframework.kafka.core.ConsumerFactory;
import org.springframework.kafka.listener.AfterRollbackProcessor;
import org.springframework.kafka.listener.CommonErrorHandler;
import org.springframework.transaction.PlatformTransactionManager;
import org.springframework.transaction.support.TransactionSynchronizationManager;
import org.springframework.util.ClassUtils;

/**
 * Auto-configuration of the outbox for a Spring Boot application with one PostgreSQL {@code
 * DataSource}:
 *
 * <ul>
 *   <li>the outbox migrations, with a Flyway instance and history table of their own ({@code
 *       outbox.migrations.enabled}, default on);
 *   <li>{@link Outbox} and {@link OutboxTemplate}, whose appends join the Spring-managed
 *       transaction;
 *   <li>{@link ProcessedMessages} and {@link ProcessedMessagesTemplate}, the dedup claim for
 *       {@code @KafkaListener} methods;
 *   <li>the {@link IdempotencyFilter} on {@code outbox.idempotency.paths}, its key transaction a
 *       Spring-managed one, so {@code @Transactional} code inside the request joins it;
 *   <li>the start-up gate over the Spring MVC endpoints, whether or not those paths are set: a POST or
 *       PATCH endpoint that the filter does not cover and nothing exempts fails the start ({@code
 *       outbox.idempotency.gate.*});
 *   <li>an embedded relay when {@code outbox.relay.enabled=true}, on the brokers and with the
 *       connection security (TLS, SASL) of Spring's Kafka producer ({@code spring.kafka.*}, and a
 *       {@code KafkaConnectionDetails} bean of a service connection) unless {@code outbox.relay.*}
 *       gives its own;
 *   <li>the scheduled purges of expired idempotency keys and of dedup claims older than the
 *       retention, on one daemon thread ({@code outbox.idempotency.purge-interval}, {@code
 *       outbox.processed.*});
 *   <li>the error handler of Spring Kafka's listener containers, which delivers a failed record
 *       again with a backoff and never skips it ({@code outbox.listener-retries.*}), unless the
 *       application defines a {@code CommonErrorHandler}; with it, an after-rollback processor for
 *       containers that run Kafka transactions that never skips a record either and does their
 *       waiting, after the rollback, unless the application defines an {@code
 *       AfterRollbackProcessor};
 *   <li>meters in the application's {@code MeterRegistry}; health indicators {@code outboxRelay}
 *       and {@code outboxConsumers} (every {@link IdempotentConsumer} bean) when Actuator is there.
 * </ul>
 *
 * <p>Every bean backs off when the application defines its own of the same type. A setting the
 * libraries refuse stops the start with a message that begins with the property and the value
 * given ({@code outbox.idempotency.lock-timeout=0s: lockTimeout must be ...}).
 */
@AutoConfiguration(
        afterName = {
            "org.springframework.boot.jdbc.autoconfigure.DataSourceAutoConfiguration",
            "org.springframework.boot.jdbc.autoconfigure.DataSourceTransactionManagerAutoConfiguration",
            "org.springframework.boot.hibernate.autoconfigure.HibernateJpaAutoConfiguration",
            "org.springframework.boot.transaction.autoconfigure.TransactionAutoConfiguration",
            "org.springframework.boot.micrometer.metrics.autoconfigure.CompositeMeterRegistryAutoConfiguration"
        })
@ConditionalOnSingleCandidate(DataSource.class)
@EnableConfigurationProperties(OutboxProperties.class)
public class OutboxAutoConfiguration {

    private static final Logger LOG = LoggerFactory.getLogger(OutboxAutoConfiguration.class);

    /** The bean name of the outbox migrations, for {@code @DependsOn}. */
    public static final String MIGRATIONS_BEAN = "outboxMigrations";

    /** The bean name of the Idempotency-Key filter's registration. */
    public static final String FILTER_REGISTRATION_BEAN = "outboxIdempotencyFilterRegistration";

    /** The bean name of the scheduled purges. */
    public static final String PURGES_BEAN = "outboxPurges";

    /** Spring Boot's bean that runs the application's own Flyway migrations at start. */
    private static final String BOOT_FLYWAY_INITIALIZER =
            "org.springframework.boot.flyway.autoconfigure.FlywayMigrationInitializer";

    /** The bean name of the starter's Idempotency-Key filter, which the outbox.idempotency.* settings configure. */
    private static final String FILTER_BEAN = "outboxIdempotencyFilter";

    private static final String SCHEMA = "outbox.schema";
    private static final String SHARDS = "outbox.shards";
    private static final String IDEMPOTENCY = "outbox.idempotency.";
    private static final String PROCESSED = "outbox.processed.";

    @Bean(MIGRATIONS_BEAN)
    @ConditionalOnEnabled(value = "outbox.migrations.enabled", byDefault = true)
    OutboxMigrationsInitializer outboxMigrations(
            DataSource dataSource,
            OutboxProperties properties,
            Environment environment,
            ResourceLoader resources,
            ListableBeanFactory beans) {
        ClassLoader loader = resources.getClassLoader();
        if (!ClassUtils.isPresent("org.flywaydb.core.Flyway", loader)) {
            throw new IllegalStateException("outbox.migrations.enabled is true (the default), so the starter installs"
                    + " and upgrades the outbox tables with Flyway, but Flyway is not on the class path: add"
                    + " org.flywaydb:flyway-core and org.flywaydb:flyway-database-postgresql, or set"
                    + " outbox.migrations.enabled=false and install the tables yourself (the plain SQL scripts in "
                    + OutboxMigrations.PLAIN_SQL_LOCATION + " of outbox-migrations, see its README)");
        }
        NamedSettings named = new NamedSettings(environment);
        String schema = properties.getSchema();
        // in a schema Spring Boot's Flyway migrates too (public, say), the application's migrations first: Boot's
        // Flyway refuses a schema that holds tables but no history of its own, while the outbox's accepts one (it
        // baselines a non-empty schema); which ran first depended on the order the application's beans asked. In
        // a schema of its own the outbox keeps no order, so that an application migration may use its tables
        if (ClassUtils.isPresent(BOOT_FLYWAY_INITIALIZER, loader) && bootFlywayMigrates(schema, environment)) {
            beans.getBeansOfType(ClassUtils.resolveClassName(BOOT_FLYWAY_INITIALIZER, loader));
        }
        named.set(SCHEMA, schema, OutboxMigrations::requireValidSchema);
        named.set(SHARDS, properties.getShards(), shards -> OutboxMigrations.placeholders(schema, shards));
        return new OutboxMigrationsInitializer(dataSource, schema, properties.getShards());
    }

    /**
     * @return whether Spring Boot's Flyway migrates {@code schema}: one of {@code spring.flyway.schemas} or
     *     its {@code default-schema}, or, with neither set, {@code public}, the schema of a connection's
     *     default search path
     */
    static boolean bootFlywayMigrates(String schema, Environment environment) {
        String[] schemas = environment.getProperty("spring.flyway.schemas", String[].class, new String[0]);
        String defaultSchema = environment.getProperty("spring.flyway.default-schema", "");
        if (schemas.length == 0 && defaultSchema.isBlank()) {
            return schema.equals("public");
        }
        return defaultSchema.strip().equals(schema)
                || Arrays.stream(schemas).map(String::strip).anyMatch(schema::equals);
    }

    @Bean
    @ConditionalOnMissingBean
    Outbox outbox(
            OutboxProperties properties,
            Environment environment,
            DataSource dataSource,
            ObjectProvider<AvroCodec> codec,
            ObjectProvider<OutboxMigrationsInitializer> migrations) {
        migrations.ifAvailable(m -> {});
        NamedSettings named = new NamedSettings(environment);
        Outbox.Builder builder = Outbox.builder().notifyInTransaction(properties.isNotifyInTransaction());
        named.set(SCHEMA, properties.getSchema(), builder::schema);
        named.set(SHARDS, properties.getShards(), builder::shards);
        // an AvroCodec bean replaces the default codec of the typed appends
        codec.ifUnique(builder::codec);
        Outbox outbox = builder.build();
        InstalledShards.requireMatch(dataSource, outbox.schema(), properties.getShards());
        return outbox;
    }

    @Bean
    @ConditionalOnMissingBean
    OutboxTemplate outboxTemplate(Outbox outbox, DataSource dataSource) {
        return new OutboxTemplate(outbox, transactionBound(dataSource));
    }

    @Bean
    @ConditionalOnMissingBean
    ProcessedMessages processedMessages(
            OutboxProperties properties,
            Environment environment,
            ObjectProvider<OutboxMigrationsInitializer> migrations) {
        migrations.ifAvailable(m -> {});
        new NamedSettings(environment).set(SCHEMA, properties.getSchema(), OutboxMigrations::requireValidSchema);
        return ProcessedMessages.create(properties.getSchema());
    }

    @Bean
    @ConditionalOnMissingBean
    ProcessedMessagesTemplate processedMessagesTemplate(
            ProcessedMessages processed, DataSource dataSource, ObjectProvider<MeterRegistry> registry) {
        return new ProcessedMessagesTemplate(processed, dataSource, meters(registry));
    }

    /**
     * The scheduled purges on one daemon thread: expired keys of the application's {@link
     * IdempotencyStore} ({@code outbox.idempotency.purge-interval}), and claims of the {@link
     * ProcessedMessagesTemplate} older than {@code outbox.processed.retention} ({@code
     * outbox.processed.purge-interval}).
     */
    @Bean(PURGES_BEAN)
    @ConditionalOnMissingBean(name = PURGES_BEAN)
    OutboxPurges outboxPurges(
            OutboxProperties properties,
            Environment environment,
            DataSource dataSource,
            ObjectProvider<IdempotencyStore> store,
            ObjectProvider<ProcessedMessagesTemplate> template,
            ObjectProvider<MeterRegistry> registry) {
        NamedSettings named = new NamedSettings(environment);
        Duration keysInterval = properties.getIdempotency().getPurgeInterval();
        Duration retention = properties.getProcessed().getRetention();
        Duration claimsInterval = properties.getProcessed().getPurgeInterval();
        named.set(IDEMPOTENCY + "purge-interval", keysInterval, OutboxPurges::requireInterval);
        named.set(PROCESSED + "purge-interval", claimsInterval, OutboxPurges::requireInterval);
        // the bounds of IdempotentConsumer's retention, which ProcessedMessages.purge also requires
        named.set(PROCESSED + "retention", retention, IdempotentConsumer.builder()::retention);
        MeterRegistry meters = meters(registry);
        List<OutboxPurges.Purge> purges = new ArrayList<>();
        IdempotencyStore keys = store.getIfUnique();
        if (keys != null) {
            purges.add(OutboxPurges.idempotencyKeys(keys, keysInterval, meters));
        }
        ProcessedMessagesTemplate claims = template.getIfUnique();
        if (claims != null) {
            purges.add(OutboxPurges.processedMessages(claims, dataSource, retention, claimsInterval, meters));
        }
        return new OutboxPurges(purges);
    }

    /** A jOOQ context on the connection of the Spring-managed transaction, whatever manages it. */
    static DSLContext transactionBound(DataSource dataSource) {
        JooqVersionCheck.quiet();
        return DSL.using(new DefaultConfiguration()
                .set(SQLDialect.POSTGRES)
                .set(new DataSourceConnectionProvider(new TransactionAwareDataSourceProxy(dataSource))));
    }

    static MeterRegistry meters(ObjectProvider<MeterRegistry> registry) {
        return registry.getIfUnique(() -> Metrics.globalRegistry);
    }

    /** The Idempotency-Key filter, when the application serves HTTP and names paths to protect. */
    @Configuration(proxyBeanMethods = false)
    @ConditionalOnWebApplication(type = ConditionalOnWebApplication.Type.SERVLET)
    @ConditionalOnClass(
            name = {"jakarta.servlet.Filter", "org.springframework.boot.web.servlet.FilterRegistrationBean"})
    @Conditional(IdempotencyPathsCondition.class)
    static class IdempotencyConfiguration {

        @Bean
        @ConditionalOnMissingBean
        IdempotencyStore outboxIdempotencyStore(
                DataSource dataSource,
                ObjectProvider<PlatformTransactionManager> transactionManager,
                OutboxProperties properties,
                Environment environment,
                ObjectProvider<MeterRegistry> registry,
                ObjectProvider<OutboxMigrationsInitializer> migrations) {
            migrations.ifAvailable(m -> {});
            PlatformTransactionManager manager = transactionManager.getIfUnique();
            if (manager == null) {
                throw new IllegalStateException(
                        "outbox.idempotency.paths is set, but there is no single"
                                + " PlatformTransactionManager bean for the Idempotency-Key filter's transaction to join; add"
                                + " spring-boot-starter-jdbc or spring-boot-starter-data-jpa, or mark one transaction manager @Primary");
            }
            // one of another DataSource (or Kafka's) would leave the key's connection in autocommit mode
            TransactionManagers.requireManages(manager, dataSource);
            DSLContext dsl = DSL.using(
                    transactionBound(dataSource).configuration().derive(new SpringTransactionProvider(manager)));
            OutboxProperties.Idempotency p = properties.getIdempotency();
            NamedSettings named = new NamedSettings(environment);
            IdempotencyStore.Builder builder = IdempotencyStore.builder()
                    .dsl(dsl)
                    .meterRegistry(meters(registry))
                    // a stored refusal rolls the request's transaction back, so that no transaction synchronisation
                    // (a @TransactionalEventListener) commits work for it, and is stored in a transaction of its own;
                    // not when the store is called inside a transaction of its caller's, which it must not end
                    .refusalsInTransactionOfTheirOwn(
                            () -> !TransactionSynchronizationManager.isActualTransactionActive())
                    // drops JPA's unflushed writes before the rollback
                    .onRollBackAndStore(PersistenceContexts.clearer(OutboxAutoConfiguration.class.getClassLoader()));
            named.set(SCHEMA, properties.getSchema(), builder::schema);
            named.set(IDEMPOTENCY + "ttl", p.getTtl(), builder::ttl);
            named.set(IDEMPOTENCY + "lock-timeout", p.getLockTimeout(), builder::lockTimeout);
            named.set(IDEMPOTENCY + "retry-after", p.getRetryAfter(), builder::retryAfter);
            named.set(IDEMPOTENCY + "hold-timeout", p.getHoldTimeout(), builder::holdTimeout);
            named.set(IDEMPOTENCY + "purge-batch-size", p.getPurgeBatchSize(), builder::purgeBatchSize);
            named.set(IDEMPOTENCY + "name", p.getName(), builder::name);
            // empty: no application, so that an upgrade leaves the scopes of the keys stored before as they were
            if (p.getApplication() != null && !p.getApplication().isEmpty()) {
                named.set(IDEMPOTENCY + "application", p.getApplication(), builder::application);
            }
            return builder.build();
        }

        @Bean(FILTER_BEAN)
        @ConditionalOnMissingBean
        IdempotencyFilter outboxIdempotencyFilter(
                IdempotencyStore store,
                OutboxProperties properties,
                Environment environment,
                ObjectProvider<MeterRegistry> registry,
                ObjectProvider<ScopeResolver> scope,
                ObjectProvider<RequestFingerprint> fingerprint,
                ObjectProvider<ResponsePolicy> responsePolicy) {
            OutboxProperties.Idempotency p = properties.getIdempotency();
            NamedSettings named = new NamedSettings(environment);
            IdempotencyFilter.Builder builder = IdempotencyFilter.builder(store).meterRegistry(meters(registry));
            named.setList(IDEMPOTENCY + "paths", p.getPaths(), v -> builder.paths(v.toArray(String[]::new)));
            named.setList(IDEMPOTENCY + "methods", p.getMethods(), v -> builder.methods(v.toArray(String[]::new)));
            named.set(IDEMPOTENCY + "max-body-bytes", p.getMaxBodyBytes(), builder::maxBodyBytes);
            named.set(IDEMPOTENCY + "max-response-bytes", p.getMaxResponseBytes(), builder::maxResponseBytes);
            named.setList(
                    IDEMPOTENCY + "stored-headers",
                    p.getStoredHeaders(),
                    v -> builder.storedHeaders(v.toArray(String[]::new)));
            named.set(IDEMPOTENCY + "name", p.getName(), builder::name);
            // a ScopeResolver bean replaces the default (principal + method + route, 401 without a caller)
            scope.ifUnique(builder::scopeResolver);
            // a RequestFingerprint or ResponsePolicy bean replaces the default (SHA-256; ResponsePolicy.standard())
            fingerprint.ifUnique(builder::fingerprint);
            responsePolicy.ifUnique(builder::responsePolicy);
            return builder.build();
        }

        @Bean(FILTER_REGISTRATION_BEAN)
        @ConditionalOnMissingBean(name = FILTER_REGISTRATION_BEAN)
        FilterRegistrationBean<IdempotencyFilter> outboxIdempotencyFilterRegistration(
                IdempotencyFilter filter, OutboxProperties properties, ListableBeanFactory beans) {
            FilterRegistrationBean<IdempotencyFilter> registration = new FilterRegistrationBean<>(filter);
            registration.setName("outboxIdempotencyFilter");
            registration.setUrlPatterns(properties.getIdempotency().getPaths());
            registration.setOrder(properties.getIdempotency().getFilterOrder());
            // async-supported, or the container would refuse async processing to every request on these paths,
            // a GET that streams (SSE, StreamingResponseBody) or answers with a Callable or DeferredResult
            // included. A request the filter protects is still refused it: the request its handler sees says
            // isAsyncSupported() == false and refuses startAsync, since the key's transaction is the request
            // thread's. The filter lets an async dispatch through without claiming a key
            registration.setAsyncSupported(true);
            // the application registers the filter itself (other paths or order, or turned off): this one
            // would register it a second time
            List<String> own = Arrays.stream(beans.getBeanNamesForType(
                            ResolvableType.forClassWithGenerics(FilterRegistrationBean.class, IdempotencyFilter.class),
                            true,
                            false))
                    .filter(name -> !name.equals(FILTER_REGISTRATION_BEAN))
                    .toList();
            if (!own.isEmpty()) {
                LOG.info(
                        "[outbox] the application registers the Idempotency-Key filter itself ({}): the starter's"
                                + " registration is off, and outbox.idempotency.paths and filter-order are not applied",
                        own);
                registration.setEnabled(false);
            }
            return registration;
        }
    }

    /**
     * The start-up gate over the Spring MVC endpoints, in every servlet web application with Spring MVC,
     * whether or not {@code outbox.idempotency.paths} is set: without it no filter runs, and every POST
     * or PATCH endpoint fails the start until it is covered or exempted. {@code
     * outbox.idempotency.gate.enabled=false} turns it off.
     */
    @Configuration(proxyBeanMethods = false)
    @ConditionalOnWebApplication(type = ConditionalOnWebApplication.Type.SERVLET)
    @ConditionalOnClass(
            name = {
                "jakarta.servlet.Filter",
                "org.springframework.boot.web.servlet.FilterRegistrationBean",
                "org.springframework.web.servlet.mvc.method.annotation.RequestMappingHandlerMapping"
            })
    @ConditionalOnEnabled(value = "outbox.idempotency.gate.enabled", byDefault = true)
    static class GateConfiguration {
        @Bean
        @ConditionalOnMissingBean
        SpringMvcGate outboxIdempotencyGate(OutboxProperties properties, Environment environment) {
            return new SpringMvcGate(
                    properties.getIdempotency().getGate(),
                    new NamedSettings(environment),
                    FILTER_BEAN,
                    environment.getProperty("spring.mvc.servlet.path", "/"),
                    environment.getProperty("server.error.path", "/error"));
        }
    }

    /**
     * Fails the start when {@code outbox.idempotency.paths} names paths in a web application that did
     * not register the filter (a reactive one, or no servlet API): those endpoints would run without
     * Idempotency-Key protection while the configuration says they have it. An application that serves
     * no HTTP (a test with {@code webEnvironment = NONE}, a worker profile) has nothing to protect.
     */
    @Bean
    @Conditional(IdempotencyPathsCondition.class)
    static SmartInitializingSingleton outboxIdempotencyPathsCheck(ApplicationContext context, Environment environment) {
        return () -> {
            boolean web = context instanceof ReactiveWebApplicationContext
                    || isInstance(context, "org.springframework.web.context.WebApplicationContext");
            if (web && !context.containsBean(FILTER_REGISTRATION_BEAN)) {
                throw new IllegalStateException("outbox.idempotency.paths is "
                        + environment.getProperty("outbox.idempotency.paths", "set")
                        + ", but the Idempotency-Key filter is a servlet filter and this web application does not"
                        + " run one (it is reactive, or jakarta.servlet is not on its class path), so those"
                        + " endpoints would run unprotected. Serve them from a servlet (Spring MVC) application,"
                        + " or remove outbox.idempotency.paths.");
            }
        };
    }

    private static boolean isInstance(Object object, String className) {
        ClassLoader loader = object.getClass().getClassLoader();
        if (!ClassUtils.isPresent(className, loader)) {
            return false;
        }
        return ClassUtils.resolveClassName(className, loader).isInstance(object);
    }

    /**
     * Fails the start when {@code outbox.relay.enabled=true} but the relay is not on the class path
     * (the starter's dependency on it is optional): the application would start with no relay, and
     * its messages would wait unpublished.
     */
    @Configuration(proxyBeanMethods = false)
    @ConditionalOnMissingClass("dev.outbox.relay.Relay")
    @ConditionalOnEnabled(value = "outbox.relay.enabled", byDefault = false)
    static class RelayMissingConfiguration {
        @Bean
        static SmartInitializingSingleton outboxRelayOnTheClassPathCheck() {
            return () -> {
                throw new IllegalStateException("outbox.relay.enabled=true, but dev.outbox:outbox-relay is not on the"
                        + " class path (the starter's dependency on it is optional), so no relay would publish the"
                        + " outbox. Add the dependency, or set outbox.relay.enabled=false and run the relay as its own"
                        + " process.");
            };
        }
    }

    /** The embedded relay; the standalone relay process remains the recommended deployment. */
    @Configuration(proxyBeanMethods = false)
    @ConditionalOnClass(Relay.class)
    @ConditionalOnEnabled(value = "outbox.relay.enabled", byDefault = false)
    static class RelayConfiguration {

        @Bean(destroyMethod = "close")
        @ConditionalOnMissingBean
        Relay outboxRelay(
                DataSource dataSource,
                OutboxProperties properties,
                Environment environment,
                ObjectProvider<MeterRegistry> registry,
                ObjectProvider<OutboxMigrationsInitializer> migrations,
                ListableBeanFactory beans) {
            migrations.ifAvailable(m -> {});
            MeterRegistry meters = meters(registry);
            SpringKafkaConnection kafka = SpringKafkaConnection.read(beans, environment);
            // a context stopped and started again starts a new relay built from the same settings
            return new RestartableRelay(
                    id -> EmbeddedRelayBuilder.build(dataSource, properties, environment, meters, kafka, id));
        }

        @Bean
        EmbeddedRelay outboxEmbeddedRelay(Relay relay) {
            return new EmbeddedRelay(relay);
        }

        @Configuration(proxyBeanMethods = false)
        @ConditionalOnClass(HealthIndicator.class)
        static class RelayHealthConfiguration {
            @Bean
            @ConditionalOnMissingBean(name = "outboxRelayHealthIndicator")
            HealthIndicator outboxRelayHealthIndicator(Relay relay) {
                return new RelayHealthIndicator(relay);
            }
        }
    }

    /** Health of the application's {@link IdempotentConsumer} beans. */
    @Configuration(proxyBeanMethods = false)
    @ConditionalOnClass(HealthIndicator.class)
    @ConditionalOnBean(IdempotentConsumer.class)
    static class ConsumerHealthConfiguration {
        @Bean
        @ConditionalOnMissingBean(name = "outboxConsumersHealthIndicator")
        HealthIndicator outboxConsumersHealthIndicator(List<IdempotentConsumer> consumers) {
            return new ConsumersHealthIndicator(consumers);
        }
    }

    /**
     * The error handler of the {@code @KafkaListener} containers Spring Boot builds, unless the
     * application defines one: a failed record is delivered again with a backoff, never skipped
     * ({@link ListenerRetries}), also in containers that run Kafka transactions. Spring Kafka's own
     * default skips it after ten attempts without delay. With it, the after-rollback processor of the
     * containers that run Kafka transactions, unless the application defines one: Spring Kafka's
     * default "recovers" a record at every tenth rollback, and the starter's never does. In those
     * containers the handler, which Spring Kafka calls inside the transaction, fails the delivery at
     * once, and the processor waits, after the rollback: a wait inside the transaction could outlast
     * the producer's {@code transaction.timeout.ms}.
     */
    @Configuration(proxyBeanMethods = false)
    @ConditionalOnClass(name = "org.springframework.kafka.listener.DefaultErrorHandler")
    @ConditionalOnEnabled(value = "outbox.listener-retries.enabled", byDefault = true)
    @ConditionalOnMissingBean(CommonErrorHandler.class)
    static class ListenerRetriesConfiguration {
        private static final String RETRIES = "outbox.listener-retries.";

        @Bean
        @ConditionalOnMissingBean(CommonErrorHandler.class)
        CommonErrorHandler outboxListenerErrorHandler(
                OutboxProperties properties, Environment environment, ObjectProvider<ConsumerFactory<?, ?>> consumers) {
            OutboxProperties.ListenerRetries p = properties.getListenerRetries();
            Duration poll = checkedPollInterval(p, environment, consumers);
            return ListenerRetries.errorHandler(p.getInitialInterval(), p.getMaxInterval(), poll);
        }

        /**
         * Spring Boot gives the single {@code AfterRollbackProcessor} bean to the containers it builds;
         * it runs after a Kafka transaction of theirs rolled back, that is after every failure of a
         * listener in containers that run Kafka transactions, and waits there for the error handler.
         */
        @Bean
        @ConditionalOnMissingBean(AfterRollbackProcessor.class)
        AfterRollbackProcessor<Object, Object> outboxListenerAfterRollbackProcessor(
                OutboxProperties properties, Environment environment, ObjectProvider<ConsumerFactory<?, ?>> consumers) {
            OutboxProperties.ListenerRetries p = properties.getListenerRetries();
            Duration poll = checkedPollInterval(p, environment, consumers);
            return ListenerRetries.afterRollbackProcessor(p.getInitialInterval(), p.getMaxInterval(), poll);
        }

        /**
         * @return the listener consumers' {@code max.poll.interval.ms}, once the waits are checked against
         *     it: they are spent in the poll loop
         * @throws IllegalArgumentException naming the property of a refused wait
         */
        private static Duration checkedPollInterval(
                OutboxProperties.ListenerRetries p,
                Environment environment,
                ObjectProvider<ConsumerFactory<?, ?>> consumers) {
            NamedSettings named = new NamedSettings(environment);
            ConsumerFactory<?, ?> factory = consumers.getIfUnique();
            Duration poll = ListenerRetries.pollInterval(factory == null ? null : factory.getConfigurationProperties());
            named.set(RETRIES + "initial-interval", p.getInitialInterval(), ListenerRetries::requireInitial);
            named.set(
                    RETRIES + "max-interval",
                    p.getMaxInterval(),
                    max -> ListenerRetries.requireMax(p.getInitialInterval(), max, poll));
            return poll;
        }
    }
}
